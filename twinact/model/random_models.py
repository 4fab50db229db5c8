"""Models with random weights built in code: the tiny SD- and SDXL-shaped ones every test and `make demo-tiny` run on
offline, and the real SD1.5 / SDXL architectures for speed and memory measurements.

A step costs the same with random weights as with trained ones, so the full-size ones let `make bench` measure
SD-sized models without downloading anything.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from twinact.model.assets import clip_tokenizer_dir
from twinact.model.base import BaseModel, noise_scheduler


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


def build_tiny(prediction_type: str = "epsilon", seed: int = 0) -> BaseModel:
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
    return BaseModel(tokenizer, text_encoder, vae, unet, noise_scheduler(prediction_type),
                      identity=f"tiny-seed{seed}")


def build_tiny_xl(prediction_type: str = "epsilon", seed: int = 0) -> BaseModel:
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
    comps = BaseModel(tokenizer, text_encoder, _tiny_vae(), unet, noise_scheduler(prediction_type),
                       identity=f"tiny_xl-seed{seed}", tokenizer_2=tokenizer_2, text_encoder_2=text_encoder_2)
    return comps


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
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
        attention_head_dim=8, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    tokenizer = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))
    return BaseModel(tokenizer, _clip_text(768, 12, 12, "quick_gelu"), _sd_vae(0.18215), unet,
                      noise_scheduler("epsilon"), identity=f"sd15_random-seed{seed}")


def build_sdxl_random(seed: int = 0):
    """SDXL base's UNet (2.6 B), both text encoders (ViT-L + bigG with projection) and VAE, random weights."""
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
    return BaseModel(tokenizer, _clip_text(768, 12, 12, "quick_gelu"), _sd_vae(0.13025), unet,
                      noise_scheduler("epsilon"), identity=f"sdxl_random-seed{seed}", tokenizer_2=tokenizer_2,
                      text_encoder_2=_clip_text(1280, 32, 20, "gelu", projection=1280))


# model.builder values; each takes the prediction type (the full-size ones are epsilon models like SD1.5 / SDXL base).
BUILDERS = {"tiny": build_tiny, "tiny_xl": build_tiny_xl, "sd15_random": lambda _: build_sd15_random(),
            "sdxl_random": lambda _: build_sdxl_random()}
