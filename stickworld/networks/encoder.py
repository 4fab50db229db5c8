"""A StickWorld action encoder: the pose judge's joints, normalised, as the coefficient MLP's frozen input.

The StickWorld counterpart of ``action_encoder=pose`` (BlazePose on photos): a pose read from the image, with the
actor's appearance thrown away by construction (``action_encoder=stickworld``).
"""

from __future__ import annotations

import torch
from PIL import Image

from stickworld.networks import judges
from stickworld.world.skeleton import normalize


class StickWorldPoseEncoder:
    """Judge joints -> centred, unit-RMS-radius (x, y) of the 14 joints (28-d), per image."""

    name = "pose:stickworld_judge"
    dim = 2 * judges.N_JOINTS

    def __init__(self, weights: str | None = None):
        self.model = judges.load(weights) if weights else judges.load()

    def encode(self, images: list[Image.Image]) -> torch.Tensor:
        joints, _ = judges.predict(images, self.model)
        return torch.from_numpy(normalize(joints)).float().flatten(1)
