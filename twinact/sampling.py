"""Rendering: a plain diffusers pipeline around the frozen parts, images and grids."""

from __future__ import annotations

import math

import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from PIL import Image


def make_pipeline(comps, unet=None, text_encoder=None) -> StableDiffusionPipeline:
    """A `StableDiffusionPipeline` on the given parts with a DDIM sampler (no safety checker: research use)."""
    return StableDiffusionPipeline(
        vae=comps.vae, text_encoder=text_encoder or comps.text_encoder, tokenizer=comps.tokenizer,
        unet=unet or comps.unet, scheduler=DDIMScheduler.from_config(comps.noise_scheduler.config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


@torch.no_grad()
def render(pipe, prompts: list[str], *, num_images: int = 1, seed: int = 0, steps: int = 25,
           guidance_scale: float = 7.5, resolution: int = 512, batch_size: int = 4,
           progress: bool = True) -> list[Image.Image]:
    """`num_images` images per prompt; image j of every prompt uses seed `seed + j` (comparable across prompts)."""
    jobs = [(p, seed + j) for p in prompts for j in range(num_images)]
    pipe.set_progress_bar_config(disable=not progress)
    images = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        gens = [torch.Generator(device="cpu").manual_seed(s) for _, s in chunk]
        out = pipe([p for p, _ in chunk], generator=gens, num_inference_steps=steps, guidance_scale=guidance_scale,
                   height=resolution, width=resolution, output_type="pil")
        images.extend(out.images)
    return images


def make_grid(images: list[Image.Image], cols: int | None = None) -> Image.Image:
    """Tile equally sized images row by row."""
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w, rows * h), "white")
    for i, im in enumerate(images):
        grid.paste(im, ((i % cols) * w, (i // cols) * h))
    return grid
