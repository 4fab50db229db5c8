"""The StickWorld base model: an SD1.5-shaped text-to-image model small enough to pretrain on this CPU.

64 px images, a 4x VAE with 8 latent channels (16x16x8 latents: a UNet step costs 0.38 s at batch 32 on one CPU
thread, against 1.32 s for the same UNet on 32x32 latents), a four-level UNet with cross-attention at its 4 and 2 px
levels only (attention at 8 px too cost 0.65 s per step), and a 4-layer 64-d CLIP text encoder over the real CLIP
tokenizer, so it loads and runs exactly like Stable Diffusion (``model=stickworld``).

Only the token-embedding rows of words StickWorld captions use are initialised randomly; every other row of the
49,408-row table starts (and stays) at zero. Those rows are never trained, and zeros keep the committed file small
once git compresses it.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPModel, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from stickworld.world.actions import ACTIONS, HELDOUT_ACTIONS, KNOWN_ACTIONS
from stickworld.world.actors import ACTORS
from stickworld.world.captions import ACTOR_TEMPLATES, SCENE_PHRASES
from stickworld.world.drawing import CAPTION_TEMPLATES
from stickworld.world.units import UNITS, VIEW_PHRASE
from twinact.model.assets import clip_tokenizer_dir
from twinact.model.base import BaseModel

RESOLUTION = 64
LATENT_SIZE = 16  # the VAE downsamples 4x
LATENT_CHANNELS = 8  # 4x fewer pixels per latent than SD's 8x, so half of SD's compression per position
TEXT_WIDTH = 64


def build_vae() -> AutoencoderKL:
    # No mid-block attention: it doubled the step time and flat-coloured figures do not need it.
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS, block_out_channels=(16, 32, 64),
        layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        norm_num_groups=16, sample_size=RESOLUTION, mid_block_add_attention=False,
    )


def build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        block_out_channels=(32, 64, 128, 128), layers_per_block=1,
        down_block_types=("DownBlock2D",) * 2 + ("CrossAttnDownBlock2D",) * 2,
        up_block_types=("CrossAttnUpBlock2D",) * 2 + ("UpBlock2D",) * 2, cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=32, norm_num_groups=16,
        # The caption, attention-pooled, added to the timestep embedding: every ResNet block, at every resolution,
        # learns which pose it is rendering (cross-attention alone sits at the 4 and 2 px levels). Costs 0.3% of a step.
        addition_embed_type="text", addition_embed_type_num_heads=4,
    )


def caption_texts() -> list[str]:
    """The pieces every pretraining caption is made of: actors, known actions' phrases, caption and actor templates,
    unit, view and scene phrases, and the comma :func:`stickworld.world.units.describe` joins units with."""
    return ([a.caption for a in ACTORS.values()] + [a.phrase for a in KNOWN_ACTIONS.values()] + list(CAPTION_TEMPLATES)
            + [u.phrase for u in UNITS] + list(VIEW_PHRASE.values()) + list(SCENE_PHRASES.values())
            + list(ACTOR_TEMPLATES) + [", "])


def _ids(tokenizer: CLIPTokenizer, texts) -> set[int]:
    return {i for t in texts for i in tokenizer(t.format(actor="", action=""), add_special_tokens=False).input_ids}


def vocabulary_ids(tokenizer: CLIPTokenizer) -> list[int]:
    """Token ids of every word a StickWorld caption or action phrase can contain (held-out phrases included:
    their rows get a random start like any word, but pretraining never shows them, so they stay untrained)."""
    heldout = [a.phrase for a in ACTIONS.values() if a.name not in KNOWN_ACTIONS]
    return sorted(_ids(tokenizer, caption_texts() + heldout) | {tokenizer.bos_token_id, tokenizer.eos_token_id})


def heldout_only_ids(tokenizer: CLIPTokenizer) -> list[int]:
    """Token ids that only held-out action names use: words no pretraining caption contains."""
    return sorted(_ids(tokenizer, (a.phrase for a in HELDOUT_ACTIONS.values())) - _ids(tokenizer, caption_texts()))


def text_encoder_from_clip(folder: str, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """The text tower of a StickWorld CLIP (:mod:`stickworld.networks.clip_model`) as the base model's text encoder,
    as Stable Diffusion takes CLIP ViT-L/14's: its captions already tell poses and actors apart, so the UNet learns
    to render them from the first step instead of waiting for a text encoder trained beside it to separate them.

    That CLIP knows the held-out actions' names; the rows of words only those names use are zeroed (as every word
    StickWorld never says), so the base model cannot read a held-out name even where its units are renderable."""
    clip = CLIPModel.from_pretrained(folder)
    model = CLIPTextModel(clip.config.text_config)
    model.load_state_dict(clip.text_model.state_dict())
    with torch.no_grad():
        model.get_input_embeddings().weight[heldout_only_ids(tokenizer)] = 0.0
    return model


def build_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH, num_hidden_layers=4,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = CLIPTextModel(config)
    table = model.get_input_embeddings().weight
    with torch.no_grad():
        used = torch.tensor(vocabulary_ids(tokenizer))
        keep = table[used].clone()
        table.zero_()
        table[used] = keep
    return model


def noise_scheduler() -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         prediction_type="epsilon", clip_sample=False, steps_offset=1)


def build(seed: int = 0) -> BaseModel:
    """Untrained StickWorld components (weights fixed by ``seed``)."""
    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))
    return BaseModel(tokenizer, build_text_encoder(tokenizer), build_vae(), build_unet(), noise_scheduler(),
                      identity=f"stickworld-untrained-seed{seed}")
