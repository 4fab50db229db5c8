"""Random-weight models with the real SD1.5 / SDXL architectures, for speed and memory measurements.

A step costs the same with random weights as with trained ones, so these let the benchmark (and CI-less machines)
measure full-size models without downloading anything.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from twinact.assets import clip_tokenizer_dir


def _clip_text(hidden: int, layers: int, heads: int, act: str, projection: int | None = None):
    config = CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=4 * hidden,
                            num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                            hidden_act=act, bos_token_id=49406, eos_token_id=2, projection_dim=projection or hidden)
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _sd_vae(scaling_factor: float) -> AutoencoderKL:
    return AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         sample_size=512, scaling_factor=scaling_factor)


def build_sd15_random(seed: int = 0):
    """SD1.5's UNet (860 M), CLIP ViT-L/14 text encoder and VAE, random weights."""
    from twinact.models import Components, _noise_scheduler

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
        attention_head_dim=8, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    tokenizer = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))
    return Components(tokenizer, _clip_text(768, 12, 12, "quick_gelu"), _sd_vae(0.18215), unet,
                      _noise_scheduler("epsilon"), identity=f"sd15_random-seed{seed}")


def build_sdxl_random(seed: int = 0):
    """SDXL base's UNet (2.6 B), both text encoders (ViT-L + bigG with projection) and VAE, random weights."""
    from twinact.models import Components, _noise_scheduler

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2, cross_attention_dim=2048,
        attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
    )
    tokenizer = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))
    tokenizer_2 = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()), pad_token="!")
    return Components(tokenizer, _clip_text(768, 12, 12, "quick_gelu"), _sd_vae(0.13025), unet,
                      _noise_scheduler("epsilon"), identity=f"sdxl_random-seed{seed}", tokenizer_2=tokenizer_2,
                      text_encoder_2=_clip_text(1280, 32, 20, "gelu", projection=1280))
