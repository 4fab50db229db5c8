"""The frozen text-to-image model: tiny ones built in code, or SD1.5 / SDXL diffusers folders and hub ids.

All come back as the same `Components`; the only family difference downstream is that SDXL has a second tokenizer
and text encoder (see `conditioning.py`). The tiny models exist so every test and the CPU demo run offline; the
pretrained path is the one users run on GPUs, and tests exercise it by saving a tiny model with `save_pretrained`
and loading it back through `from_pretrained`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from twinact.assets import clip_tokenizer_dir
from twinact.errors import TwinActError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Frozen weights follow the trainer's mixed precision unless the model config names a dtype.
_PRECISION_DTYPE = {"16-mixed": "fp16", "bf16-mixed": "bf16", "16-true": "fp16", "bf16-true": "bf16"}


@dataclass
class Components:
    """The parts of a Stable Diffusion model that twinact trains around."""

    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    unet: UNet2DConditionModel
    noise_scheduler: DDPMScheduler
    identity: str  # what the checkpoint fingerprint and action-space cache are keyed on
    tokenizer_2: CLIPTokenizer | None = None  # SDXL only
    text_encoder_2: CLIPTextModelWithProjection | None = None  # SDXL only (its pooled, projected output conditions)

    @property
    def is_xl(self) -> bool:
        return self.text_encoder_2 is not None

    @property
    def tokenizers(self) -> list[CLIPTokenizer]:
        return [self.tokenizer] + ([self.tokenizer_2] if self.is_xl else [])

    @property
    def text_encoders(self) -> list[CLIPTextModel]:
        return [self.text_encoder] + ([self.text_encoder_2] if self.is_xl else [])

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


def frozen_dtype(name: str, precision: str) -> torch.dtype:
    """Resolve `model.dtype` (`auto`, fp32, fp16, bf16) against the trainer precision."""
    if name == "auto":
        name = _PRECISION_DTYPE.get(str(precision), "fp32")
    if name not in DTYPES:
        raise TwinActError(f"model.dtype={name!r} is not one of auto, {', '.join(DTYPES)}.")
    return DTYPES[name]


def _noise_scheduler(prediction_type: str) -> DDPMScheduler:
    # SD1.5's training schedule.
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type=prediction_type, clip_sample=False, steps_offset=1,
    )


def _tiny_text_config(vocab_size: int, hidden: int, eos_token_id: int = 49407, **kw) -> CLIPTextConfig:
    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
                          eos_token_id=eos_token_id, pad_token_id=49407, **kw)


def _tiny_vae() -> AutoencoderKL:
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=32,
        sample_size=64,
    )
    # A trained SD VAE's posterior std is small next to its latents' spread, so training on posterior samples
    # (model.latents=sample) is training on the image. A random one's std is ~1, six times its latents' spread here;
    # a log-variance bias of -8 (std ~0.02) makes the tiny model behave like a trained one. Set after the random
    # init, so the other weights drawn from the seed do not change.
    with torch.no_grad():
        vae.quant_conv.bias[vae.config.latent_channels:] = -8.0
    return vae


def build_tiny(prediction_type: str = "epsilon", seed: int = 0) -> Components:
    """A CPU-sized SD-shaped model with random weights (fixed by `seed`) and the real CLIP tokenizer.

    64 px images, a 2x VAE (32x32 latents), a two-level UNet with cross-attention, a 2-layer 32-d CLIP text encoder.
    """
    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))
    # eos_token_id set to the real id: with the legacy value 2 the pooled output is taken at argmax(input_ids),
    # which lands on added placeholder ids.
    text_encoder = CLIPTextModel(_tiny_text_config(len(tokenizer), 32))
    vae = _tiny_vae()
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        # attention only at 16x16: at 32x32 self-attention costs most of a CPU step
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
    )
    return Components(tokenizer, text_encoder, vae, unet, _noise_scheduler(prediction_type),
                      identity=f"tiny-seed{seed}")


def build_tiny_xl(prediction_type: str = "epsilon", seed: int = 0) -> Components:
    """A CPU-sized SDXL-shaped model: two text encoders of different widths (32 + 48, so slicing bugs show), the
    second with a projection and SDXL's legacy `eos_token_id=2`, and a `text_time` UNet taking pooled text + time ids.
    """
    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))
    tokenizer_2 = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()), pad_token="!")  # SDXL's second tokenizer
    text_encoder = CLIPTextModel(_tiny_text_config(len(tokenizer), 32))
    config_2 = _tiny_text_config(len(tokenizer), 48, eos_token_id=2, projection_dim=32)
    text_encoder_2 = CLIPTextModelWithProjection(config_2)
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32 + 48, attention_head_dim=(2, 4), norm_num_groups=32, transformer_layers_per_block=(1, 2),
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=32 + 6 * 8,
        use_linear_projection=True,
    )
    comps = Components(tokenizer, text_encoder, _tiny_vae(), unet, _noise_scheduler(prediction_type),
                       identity=f"tiny_xl-seed{seed}", tokenizer_2=tokenizer_2, text_encoder_2=text_encoder_2)
    return comps


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


def _builders() -> dict:
    from twinact.random_models import build_sd15_random, build_sdxl_random

    return {"tiny": build_tiny, "tiny_xl": build_tiny_xl, "sd15_random": lambda _: build_sd15_random(),
            "sdxl_random": lambda _: build_sdxl_random()}


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
        builders = _builders()
        name = builder or ("tiny_xl" if family == "sdxl" else "tiny")
        if name not in builders:
            raise TwinActError(f"model.builder={name!r} is not one of {', '.join(builders)}.")
        comps = builders[name](prediction_type)
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
    from twinact.data import PACKAGE_PREFIX, package_path

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


def save_as_pipeline(comps: Components, out_dir: str) -> None:
    """Write the components as a plain diffusers pipeline folder (what `model=sd15` / `model=sdxl` load)."""
    from twinact.sampling import make_pipeline

    pipe = make_pipeline(comps)
    pipe.scheduler = comps.noise_scheduler
    pipe.save_pretrained(out_dir)
