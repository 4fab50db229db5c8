"""UNet LoRA through peft (the adapter diffusers itself uses, so exports load with `load_lora_weights`)."""

from __future__ import annotations

import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from twinact.errors import TwinActError

# Every attention projection of self- and cross-attention (released code).
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def add_lora(unet, rank: int, alpha: float | None = None, dropout: float = 0.0,
             targets: tuple[str, ...] = DEFAULT_TARGETS, init: str = "gaussian") -> LoraConfig:
    """Attach a trainable LoRA adapter (fp32, whatever the frozen dtype) to the UNet.

    Args:
        rank: LoRA rank (> 0; the config check refuses others).
        alpha: scale numerator; None means alpha = rank (scale 1).
        init: peft's `init_lora_weights` ("gaussian": A random, B zero, so the adapter starts as the identity).
    """
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, lora_dropout=dropout, init_lora_weights=init,
                        target_modules=list(targets))
    try:
        unet.add_adapter(config)
    except ValueError as err:
        raise TwinActError(f"lora.targets={list(targets)} match no UNet layer ({err}).") from None
    for name, param in unet.named_parameters():
        if "lora_" in name:
            param.data = param.data.float()  # trainable weights stay fp32 under fp16/bf16 frozen weights
    return config


def lora_state_dict(unet) -> dict[str, torch.Tensor]:
    """The adapter's weights in peft naming (what `StableDiffusionPipeline.save_lora_weights` expects)."""
    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(unet).items()}
