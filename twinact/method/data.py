"""Exemplar images and the step-indexed training stream.

Every training sample is a pure function of (seed, global sample index): which exemplar, flip, caption, timestep and
noise seed. The batch sampler hands out the indices of one optimizer step per epoch, split across ranks. So a
resumed run sees exactly the samples an uninterrupted run would, and N ranks see the same global batch as one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Sampler

from twinact.errors import TwinActError
from twinact.paths import package_path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
MAX_ASPECT = 3.0  # beyond it the centre crop keeps under a third of the image


class Exemplars(list):
    """The loaded exemplars, and the warnings about them (logged while loading; train.log gets them once it exists)."""

    def __init__(self, items=(), notes: list[str] | None = None):
        super().__init__(items)
        self.notes = list(notes or [])


@dataclass
class Exemplar:
    """One exemplar image at training resolution, with what SDXL's micro-conditioning needs to know about it."""

    image: Image.Image
    path: Path
    original_size: tuple[int, int]  # (h, w) after EXIF rotation
    crop_top_left: tuple[int, int]  # (top, left) of the crop in the resized image


def load_image(path: Path, resolution: int) -> Image.Image:
    """Open any mode (RGB, RGBA, L, P, CMYK, 16-bit), apply EXIF rotation, resize the short side, centre-crop."""
    return load_exemplar(path, resolution).image


def load_original(path: Path) -> Image.Image:
    """The image as RGB at its own size: EXIF rotation applied, 16-bit / float rescaled, transparency on white."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / float: rescale, convert() would clip
            arr = np.asarray(im, dtype=np.float64)
            peak = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
            im = Image.fromarray(np.clip(arr / peak * 255.0, 0, 255).astype(np.uint8), mode="L")
        if im.mode in ("RGBA", "LA", "P"):  # transparent areas become white, not black
            im = im.convert("RGBA")
            canvas = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(canvas, im)
        return im.convert("RGB")


def load_exemplar(path: Path, resolution: int) -> Exemplar:
    """`load_image` plus the original size and crop position."""
    im = load_original(path)
    w, h = im.size
    scale = resolution / min(w, h)
    rw, rh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    top, left = (rh - resolution) // 2, (rw - resolution) // 2
    im = im.resize((rw, rh), Image.Resampling.BICUBIC).crop((left, top, left + resolution, top + resolution))
    return Exemplar(im, Path(path), (h, w), (top, left))


def load_exemplars(image_dir: str, resolution: int) -> list[Exemplar]:
    """Load every image in a folder; skip corrupt ones with a warning, fail with a clear message if none remain."""
    folder = package_path(image_dir)
    if not folder.is_dir():
        shipped = sorted(p.name for p in folder.parent.iterdir() if p.is_dir()) if folder.parent.is_dir() else []
        if str(image_dir).startswith("pkg://") and shipped:  # a shipped action's folder, chosen by action.name
            raise TwinActError(f"No shipped exemplars for {folder.name!r} ({folder.parent}). The shipped actions: "
                               f"{', '.join(shipped)} (action.name=<one>); or set action.image_dir to your photos.")
        raise TwinActError(f"Image folder {folder} does not exist. Set action.image_dir to a folder of exemplar "
                           "images.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise TwinActError(f"Image folder {folder} is empty. Put 3-10 exemplar images of the action in it.")
    candidates = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not candidates:
        raise TwinActError(
            f"Image folder {folder} has no images (found {', '.join(p.name for p in files[:5])}). "
            f"Supported: {', '.join(sorted(IMAGE_SUFFIXES))}."
        )
    exemplars = Exemplars()
    for path in candidates:
        try:
            exemplars.append(load_exemplar(path, resolution))
        except Image.DecompressionBombError as err:
            exemplars.notes.append(f"Skipping {path}: {err} Downscale it (2048 px on the long side is plenty).")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            exemplars.notes.append(f"Skipping unreadable image {path} ({err}).")
    exemplars.notes += [n for ex in exemplars if (n := size_note(ex, resolution))]
    for note in exemplars.notes:
        log.warning(note)
    if not exemplars:
        raise TwinActError(f"No readable image in {folder}: all {len(candidates)} files are corrupt or too large "
                           f"({exemplars.notes[0]}). Replace them.")
    return exemplars


def size_note(ex: Exemplar, resolution: int) -> str | None:
    """A warning for an image too small for the training resolution or too elongated for its centre crop."""
    h, w = ex.original_size
    if min(h, w) * 4 < resolution:
        return (f"{ex.path} is {w}x{h} px, under a quarter of data.resolution={resolution}: upscaled "
                f"{resolution / min(h, w):.0f}x it trains on a blur. Use a larger image.")
    if max(h, w) > MAX_ASPECT * min(h, w):
        return (f"{ex.path} is {w}x{h} px: the square centre crop keeps {min(h, w) / max(h, w):.0%} of it. Crop it "
                "around the action.")
    return None


def check_resolution(resolution: int, vae_scale_factor: int) -> None:
    step = max(8, vae_scale_factor)
    if resolution <= 0 or resolution % step:
        raise TwinActError(
            f"data.resolution={resolution} must be a positive multiple of {step} (the VAE downsamples by "
            f"{vae_scale_factor}); try {max(step, round(resolution / step) * step)}."
        )


class ActionStream(Dataset):
    """Virtual dataset: item i is the i-th training sample of the run (deterministic in seed and i).

    Args:
        num_images: number of exemplars.
        stage1_steps: optimizer steps of stage 1 (textual-inversion templates); later steps use the plain caption.
        samples_per_step: global batch (batch size x accumulation x world size).
        templates: stage-1 caption templates with one `{}` for the placeholder string.
        caption: the stage-2 caption, with `{}`.
        placeholder: the placeholder string, e.g. "<a1> <a2> <a3>".
        flip_p: horizontal-flip probability (0 by default: flipping turns left/right actions into others).
        num_train_timesteps: diffusion timesteps to draw from.
    """

    def __init__(self, num_images: int, stage1_steps: int, samples_per_step: int, templates: list[str], caption: str,
                 placeholder: str, flip_p: float, num_train_timesteps: int, seed: int):
        self.num_images, self.stage1_steps, self.samples_per_step = num_images, stage1_steps, samples_per_step
        self.templates, self.caption, self.placeholder = list(templates), caption, placeholder
        self.flip_p, self.num_train_timesteps, self.seed = flip_p, num_train_timesteps, seed

    def __len__(self) -> int:
        return 2**62  # indices come from StepBatchSampler; the stream is unbounded

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, index])
        step = index // self.samples_per_step
        text = self.templates[rng.integers(len(self.templates))] if step < self.stage1_steps else self.caption
        return {
            "image": int(rng.integers(self.num_images)),
            "flip": int(rng.random() < self.flip_p),
            "caption": text.format(self.placeholder),
            "timestep": int(rng.integers(self.num_train_timesteps)),
            "noise_seed": int(rng.integers(2**62)),
            "index": index,
        }


class StepBatchSampler(Sampler):
    """One epoch = one optimizer step: `accumulate` micro-batches of this rank's share of the global batch.

    Args:
        step_fn: returns the optimizer step about to run (the trainer's `global_step`, read when iteration starts).
            The global step, not the epoch counter: a checkpoint written at an epoch's end restores the epoch it was
            written in, so an epoch-indexed stream would repeat that step's samples after a resume.
    """

    def __init__(self, batch_size: int, accumulate: int, step_fn, rank: int = 0, world_size: int = 1):
        self.batch_size, self.accumulate, self.rank, self.world_size = batch_size, accumulate, rank, world_size
        self.step_fn = step_fn

    def __len__(self) -> int:
        return self.accumulate

    def __iter__(self):
        b, w, step = self.batch_size, self.world_size, self.step_fn()
        for micro in range(self.accumulate):
            start = ((step * self.accumulate + micro) * w + self.rank) * b
            yield list(range(start, start + b))


class ActionDataModule(pl.LightningDataModule):
    """Wraps the stream for Lightning; rank and world size come from the trainer at dataloader time."""

    def __init__(self, stream_kwargs: dict, batch_size: int, accumulate: int, num_workers: int = 0):
        super().__init__()
        self.stream_kwargs, self.batch_size, self.accumulate = stream_kwargs, batch_size, accumulate
        self.num_workers = num_workers

    def train_dataloader(self) -> DataLoader:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        stream = ActionStream(samples_per_step=self.batch_size * self.accumulate * world, **self.stream_kwargs)
        sampler = StepBatchSampler(self.batch_size, self.accumulate, lambda: self.trainer.global_step, rank, world)
        return DataLoader(stream, batch_sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)
