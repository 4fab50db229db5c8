"""`BaseModel`: the parts of a Stable Diffusion model that twinact trains around, whatever built or loaded them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Frozen weights follow the trainer's mixed precision unless the model config names a dtype.
_PRECISION_DTYPE = {"16-mixed": "fp16", "bf16-mixed": "bf16", "16-true": "fp16", "bf16-true": "bf16"}


@dataclass
class BaseModel:
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
    """Resolve `model.dtype` (`auto`, fp32, fp16, bf16; checked with the config) against the trainer precision."""
    if name == "auto":
        name = _PRECISION_DTYPE.get(str(precision), "fp32")
    return DTYPES[name]


def noise_scheduler(prediction_type: str) -> DDPMScheduler:
    # SD1.5's training schedule.
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type=prediction_type, clip_sample=False, steps_offset=1,
    )
