"""The frozen text-to-image model: tiny ones built in code, or SD1.5 / SDXL diffusers folders and hub ids.

All come back as the same `BaseModel`; the only family difference downstream is that SDXL has a second tokenizer
and text encoder (see `conditioning.py`). The tiny models exist so every test and the CPU demo run offline; the
pretrained path is the one users run on GPUs, and tests exercise it by saving a tiny model with `save_pretrained`
and loading it back through `from_pretrained`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

from twinact.config.schema import ModelConfig
from twinact.errors import TwinActError
from twinact.model.base import BaseModel, frozen_dtype
from twinact.model.random_models import BUILDERS
from twinact.paths import PACKAGE_PREFIX, package_path

log = logging.getLogger(__name__)


def pipeline_class(is_xl: bool):
    return StableDiffusionXLPipeline if is_xl else StableDiffusionPipeline


def load_pipeline(path: str, family: str = "sd15", revision: str | None = None, variant: str | None = None,
                  dtype: torch.dtype = torch.float32, vae: str | None = None):
    """A plain diffusers pipeline from an SD1.5- or SDXL-layout model (hub id or folder), with the DDIM sampler.

    Training, `sample.py`, `evaluate.py` and the model card's snippet all load the base model this way, so what the
    tests check for plain diffusers is what twinact itself runs. The folder's own scheduler config seeds DDIM (its
    betas and prediction type); twinact renders with DDIM whatever sampler a hub folder names.
    """
    kw = {"revision": revision, "variant": variant, "dtype": dtype}
    if family != "sdxl":  # research use: no safety checker (and no download of one)
        kw.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    try:
        if vae:
            kw["vae"] = AutoencoderKL.from_pretrained(vae, dtype=dtype)
        pipe = pipeline_class(family == "sdxl").from_pretrained(path, **kw)
    except (OSError, ValueError) as err:
        raise TwinActError(
            f"Could not load the {family} model {path!r} ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "Give a diffusers folder or a hub id in model.pretrained, and log in / go online for hub ids."
        ) from None
    if family == "sdxl" and pipe.unet.config.addition_embed_type != "text_time":
        raise TwinActError(f"{path} is not an SDXL model (its UNet takes no text_time conditioning); use model=sd15.")
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_pretrained(path: str, family: str = "sd15", revision: str | None = None, variant: str | None = None,
                    dtype: torch.dtype = torch.float32, vae: str | None = None) -> BaseModel:
    """`load_pipeline`'s parts as `BaseModel` (the training schedule: DDPM on the folder's scheduler config).

    Both SDXL text encoders are loaded whole, the second with its final norm and projection (the released code left
    the pooled embedding random). `vae` names a separate VAE folder or id (e.g. the fp16-fix SDXL VAE).
    """
    pipe = load_pipeline(path, family, revision, variant, dtype, vae)
    extra = {"tokenizer_2": pipe.tokenizer_2, "text_encoder_2": pipe.text_encoder_2} if family == "sdxl" else {}
    return BaseModel(pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet,
                      DDPMScheduler.from_config(pipe.scheduler.config), identity=f"{path}@{revision or 'main'}",
                      **extra)


def resolve_pretrained(model: ModelConfig) -> str | None:
    """`model.pretrained` as `from_pretrained` takes it: `pkg://` resolved to the installed folder; None for a model
    built in code."""
    pretrained = model.pretrained
    if pretrained and pretrained.startswith(PACKAGE_PREFIX):  # a model shipped in a package (model=stickworld)
        pretrained = str(package_path(pretrained))
        if not Path(pretrained, "model_index.json").is_file():
            raise TwinActError(f"model.pretrained={model.pretrained} is not built yet ({pretrained} has no "
                               "model_index.json); for model=stickworld run `make stickworld`.")
    return pretrained


def load_base_model(pretrained: str | None, *, family: str = "sd15", builder: str | None = None,
                    revision: str | None = None, variant: str | None = None, dtype: torch.dtype = torch.float32,
                    prediction_type: str = "epsilon", vae: str | None = None) -> BaseModel:
    """The frozen base model in `dtype`, no gradients.

    Args:
        pretrained: hub id or diffusers folder; None builds `builder` in code (default: the family's tiny model).
        builder: tiny | tiny_xl | sd15_random | sdxl_random (random weights, real shapes: for measurements).
    """
    if pretrained is None:
        name = builder or ("tiny_xl" if family == "sdxl" else "tiny")
        if name not in BUILDERS:
            raise TwinActError(f"model.builder={name!r} is not one of {', '.join(BUILDERS)}.")
        comps = BUILDERS[name](prediction_type)
        log.warning("model=%s has random weights (built in code for tests and timings): its pictures are noise and its "
                    "scores mean nothing. A model that draws: model=stickworld (CPU) or model=sd15 (GPU).", name)
    else:
        comps = load_pretrained(pretrained, family, revision, variant, dtype, vae)
    for module in (*comps.text_encoders, comps.vae, comps.unet):
        module.requires_grad_(False)
        module.eval()
        if module.dtype != dtype:
            module.to(dtype)
    return comps


def load_model(m: ModelConfig, precision: str = "32-true") -> BaseModel:
    """`load_base_model` from a `model=` group's settings (`typed("model", cfg.model)`)."""
    return load_base_model(resolve_pretrained(m), family=m.family, builder=m.builder, revision=m.revision,
                           variant=m.variant, dtype=frozen_dtype(m.dtype, precision),
                           prediction_type=m.prediction_type, vae=m.vae)
