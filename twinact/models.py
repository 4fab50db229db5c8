"""The frozen text-to-image model: a tiny one built in code, or any SD1.5-family diffusers folder / hub id.

Both come back as the same `Components`, so nothing downstream knows which one it got. The tiny model exists so
every test and the CPU demo run offline; the pretrained path is the one users run on GPUs, and tests exercise it by
saving the tiny model with `save_pretrained` and loading it back through `from_pretrained`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

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


def build_tiny(prediction_type: str = "epsilon", seed: int = 0) -> Components:
    """A CPU-sized SD-shaped model with random weights (fixed by `seed`) and the real CLIP tokenizer.

    64 px images, a 2x VAE (32x32 latents), a two-level UNet with cross-attention, a 2-layer 32-d CLIP text encoder.
    """
    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))
    # eos_token_id set to the real id: with the legacy value 2 the pooled output is taken at argmax(input_ids),
    # which lands on added placeholder ids.
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )
    text_encoder = CLIPTextModel(text_config)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=32,
        sample_size=64,
    )
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
    )
    return Components(tokenizer, text_encoder, vae, unet, _noise_scheduler(prediction_type), identity=f"tiny-seed{seed}")


def load_pretrained(path: str, revision: str | None = None, variant: str | None = None,
                    dtype: torch.dtype = torch.float32) -> Components:
    """Load an SD1.5-layout diffusers model (hub id or local folder) with `from_pretrained`, in the frozen dtype."""
    kw = {"revision": revision, "variant": variant}
    try:
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", revision=revision)
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype, **kw)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=dtype, **kw)
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtype, **kw)
        scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler", revision=revision)
    except (OSError, ValueError) as err:
        raise TwinActError(
            f"Could not load the model {path!r} ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "Give a diffusers folder or a hub id in model.pretrained, and log in / go online for hub ids."
        ) from None
    identity = f"{path}@{revision or 'main'}"
    return Components(tokenizer, text_encoder, vae, unet, scheduler, identity=identity)


def load_components(pretrained: str | None, *, revision: str | None = None, variant: str | None = None,
                    dtype: torch.dtype = torch.float32, prediction_type: str = "epsilon") -> Components:
    """Frozen components in `dtype`, no gradients: the tiny model when `pretrained` is None."""
    comps = build_tiny(prediction_type) if pretrained is None else load_pretrained(pretrained, revision, variant, dtype)
    for module in (comps.text_encoder, comps.vae, comps.unet):
        module.requires_grad_(False)
        module.eval()
        module.to(dtype)
    return comps


def save_as_pipeline(comps: Components, out_dir: str) -> None:
    """Write the components as a plain `StableDiffusionPipeline` folder (what `model=sd15` loads)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=comps.vae, text_encoder=comps.text_encoder, tokenizer=comps.tokenizer, unet=comps.unet,
        scheduler=comps.noise_scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out_dir)
