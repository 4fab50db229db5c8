"""The frozen text-to-image model: tiny ones built in code, or SD1.5 / SDXL diffusers folders and hub ids.

All come back as the same `Components`; the only family difference downstream is that SDXL has a second tokenizer
and text encoder (see `conditioning.py`). The tiny models exist so every test and the CPU demo run offline; the
pretrained path is the one users run on GPUs, and tests exercise it by saving a tiny model with `save_pretrained`
and loading it back through `from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from twinact.components import Components, frozen_dtype
from twinact.errors import TwinActError
from twinact.paths import PACKAGE_PREFIX, package_path
from twinact.random_models import BUILDERS


def load_pretrained(path: str, family: str = "sd15", revision: str | None = None, variant: str | None = None,
                    dtype: torch.dtype = torch.float32, vae: str | None = None) -> Components:
    """Load an SD1.5- or SDXL-layout diffusers model (hub id or folder) with `from_pretrained`, in the frozen dtype.

    Both SDXL text encoders are loaded whole, the second with its final norm and projection (the released code left
    the pooled embedding random). `vae` names a separate VAE folder or id (e.g. the fp16-fix SDXL VAE).
    """
    kw = {"revision": revision, "variant": variant}
    try:
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", revision=revision)
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype, **kw)
        extra = {}
        if family == "sdxl":
            extra["tokenizer_2"] = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer_2", revision=revision)
            extra["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(
                path, subfolder="text_encoder_2", dtype=dtype, **kw)
        if vae:
            autoencoder = AutoencoderKL.from_pretrained(vae, torch_dtype=dtype)
        else:
            autoencoder = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=dtype, **kw)
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtype, **kw)
        scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler", revision=revision)
    except (OSError, ValueError) as err:
        raise TwinActError(
            f"Could not load the {family} model {path!r} ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "Give a diffusers folder or a hub id in model.pretrained, and log in / go online for hub ids."
        ) from None
    if family == "sdxl" and unet.config.addition_embed_type != "text_time":
        raise TwinActError(f"{path} is not an SDXL model (its UNet takes no text_time conditioning); use model=sd15.")
    identity = f"{path}@{revision or 'main'}"
    return Components(tokenizer, text_encoder, autoencoder, unet, scheduler, identity=identity, **extra)


def load_components(pretrained: str | None, *, family: str = "sd15", builder: str | None = None,
                    revision: str | None = None, variant: str | None = None, dtype: torch.dtype = torch.float32,
                    prediction_type: str = "epsilon", vae: str | None = None) -> Components:
    """Frozen components in `dtype`, no gradients.

    Args:
        pretrained: hub id or diffusers folder; None builds `builder` in code (default: the family's tiny model).
        builder: tiny | tiny_xl | sd15_random | sdxl_random (random weights, real shapes: for measurements).
    """
    if family not in ("sd15", "sdxl"):
        raise TwinActError(f"model.family={family!r} is not sd15 or sdxl.")
    if pretrained is None:
        name = builder or ("tiny_xl" if family == "sdxl" else "tiny")
        if name not in BUILDERS:
            raise TwinActError(f"model.builder={name!r} is not one of {', '.join(BUILDERS)}.")
        comps = BUILDERS[name](prediction_type)
    else:
        comps = load_pretrained(pretrained, family, revision, variant, dtype, vae)
    for module in (*comps.text_encoders, comps.vae, comps.unet):
        module.requires_grad_(False)
        module.eval()
        if module.dtype != dtype:
            module.to(dtype)
    return comps


def load_model(model_cfg, precision: str = "32-true") -> Components:
    """`load_components` from a `model=` config node."""
    m = model_cfg
    pretrained = m.pretrained
    if pretrained and pretrained.startswith(PACKAGE_PREFIX):  # a model shipped in the package (model=stickworld)
        pretrained = str(package_path(pretrained))
        if not Path(pretrained, "model_index.json").is_file():
            raise TwinActError(f"model.pretrained={m.pretrained} is not built yet ({pretrained} has no "
                               "model_index.json); for model=stickworld run `make stickworld`.")
    return load_components(pretrained, family=m.get("family", "sd15"), builder=m.get("builder"),
                           revision=m.revision, variant=m.variant, dtype=frozen_dtype(m.dtype, precision),
                           prediction_type=m.prediction_type, vae=m.get("vae"))
