"""Pretraining batches of the StickWorld base model, indexed by step and drawn ahead in worker processes.

Every batch is a pure function of (``seed``, phase, step) and the run's settings: its own random generator is seeded
with exactly those, so a resumed run, a run with more workers and an unbroken one see the same batches, bitwise.
Workers only decide where a batch is drawn, never what it holds; :class:`StepBatches` is a map-style dataset, so a
``DataLoader`` keeps the step order whatever its workers finish first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from stickworld.pretraining import mixture
from stickworld.world.drawing import sample

PHASES = ("vae", "unet", "decoder")


def images_uint8(images) -> torch.Tensor:
    """PIL images -> uint8 [B, 3, H, W] (a view of [B, H, W, 3]): what a drawing worker hands over, a quarter of the
    floats' bytes in shared memory and on the way to a GPU."""
    arr = np.stack([np.asarray(im, dtype=np.uint8) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2)


def model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float in [-1, 1] (the diffusers VAE's range), on the pixels' device and in their memory
    layout: the layout picks the convolution kernels, so a contiguous copy would change a CPU run's numbers."""
    return pixels.float().div_(127.5).sub_(1.0)


def images_tensor(images) -> torch.Tensor:
    """PIL images -> float [B, 3, H, W] in [-1, 1]."""
    return model_range(images_uint8(images))


def batch(seed: int, phase: str, step: int, size: int, drop: float = 0.0, captions: str = "mixture",
          units: tuple[int, int] = mixture.DEFAULT_UNITS, dtype: str = "float",
          canonical: float | None = None) -> tuple[torch.Tensor, list[str]]:
    """The ``step``-th batch of ``phase`` (``drop`` of its captions emptied): images and captions.

    Args:
        captions: ``"mixture"``: the pretraining mixture of :mod:`stickworld.pretraining.mixture` (known actions
            by name, held-out and free poses by their units); ``"known"``: known-action drawings by name only.
        units: How many parts a free pose of the mixture moves (low, high), e.g. from
            :func:`stickworld.pretraining.mixture.units_at`.
        dtype: ``"float"`` ([-1, 1]) or ``"uint8"`` (:func:`images_uint8`; :func:`model_range` converts).
        canonical: Share of canonical takes in the mixture (:func:`stickworld.pretraining.mixture.sample`).
    """
    rng = np.random.default_rng([seed, PHASES.index(phase), step])
    if captions == "mixture":
        samples = [mixture.sample(rng, units=units, canonical=canonical) for _ in range(size)]
    else:
        samples = [sample(rng, "known") for _ in range(size)]
    texts = ["" if rng.random() < drop else s["caption"] for s in samples]
    pixels = images_uint8([s["image"] for s in samples])
    return (model_range(pixels) if dtype == "float" else pixels), texts


class StepBatches(Dataset):
    """Batches ``start`` .. ``stop - 1`` of one phase; item ``i`` is the batch of step ``start + i``.

    Args:
        seed: The run's ``--seed``.
        phase: One of :data:`PHASES`.
        size: Images per batch.
        drop: Share of captions emptied (classifier-free guidance).
        captions: As :func:`batch`.
        schedule: A parsed ``--max-units-schedule`` (:func:`stickworld.pretraining.mixture.parse_units_schedule`),
            or ``None`` for the grammar's own range.
        tokenize: Captions -> token ids [B, 77]. Given, items hold ``ids`` instead of ``captions``: tokenizing 256
            captions costs as much as a GPU step, so it belongs in the workers, beside the drawing.
        canonical: (ramp, floor) of :func:`stickworld.pretraining.mixture.canonical_share`, or ``None`` for
            random takes only.
    """

    def __init__(self, seed: int, phase: str, start: int, stop: int, size: int, drop: float = 0.0,
                 captions: str = "mixture", schedule=None,
                 tokenize: Callable[[list[str]], torch.Tensor] | None = None,
                 canonical: tuple[int, float] | None = None):
        self.seed, self.phase, self.start, self.stop, self.size = seed, phase, start, stop, size
        self.drop, self.captions, self.schedule, self.tokenize = drop, captions, schedule, tokenize
        self.canonical = canonical

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> dict:
        step = self.start + i
        units = mixture.units_at(self.schedule, step) if self.schedule else mixture.DEFAULT_UNITS
        share = None if self.canonical is None else mixture.canonical_share(step, *self.canonical)
        pixels, texts = batch(self.seed, self.phase, step, self.size, self.drop, self.captions, units, "uint8", share)
        item = {"step": step, "pixels": pixels}  # uint8: model_range() where the model runs
        if self.tokenize is None:
            item["captions"] = texts
        else:
            item["ids"] = self.tokenize(texts)
        return item


def tokenizer_fn(tokenizer):
    """Captions -> padded token ids [B, 77], as the text encoder reads them (picklable, for drawing workers)."""
    return functools.partial(_tokenize, tokenizer)


def _tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def iterate(dataset: StepBatches, workers: int = 0, pin_memory: bool = False) -> Iterator[dict]:
    """The dataset's items in step order: drawn in this process (``workers=0``) or by ``workers`` processes, each
    item a whole batch (one worker draws one batch; several batches are in flight at once)."""
    if workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers, pin_memory=pin_memory,
                        prefetch_factor=4)  # 4 per worker: drawing times vary with the poses
    return iter(loader)
