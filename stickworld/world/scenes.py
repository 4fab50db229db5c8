"""Backdrops: a sky gradient over a ground band that starts where the figure stands.

The scene is drawn per sample independently of the actor and the action, so neither can be guessed from it.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from PIL import Image, ImageDraw

from stickworld.world.canvas import RGB


@dataclasses.dataclass(frozen=True)
class Scene:
    """Colours of one backdrop: sky from top to horizon, and the ground."""

    name: str
    sky_top: RGB
    sky_bottom: RGB
    ground: RGB


SCENES = (
    Scene("meadow", (120, 180, 240), (200, 230, 250), (110, 170, 80)),
    Scene("beach", (90, 170, 230), (220, 235, 245), (232, 214, 160)),
    Scene("snow", (170, 190, 215), (225, 232, 240), (236, 240, 246)),
    Scene("night", (15, 20, 50), (50, 60, 110), (45, 50, 60)),
    Scene("sunset", (250, 150, 90), (250, 210, 140), (110, 80, 110)),
    Scene("studio", (215, 215, 210), (235, 235, 230), (180, 178, 172)),
    Scene("room", (225, 205, 170), (240, 225, 195), (150, 100, 60)),
    Scene("desert", (130, 190, 230), (240, 220, 190), (210, 160, 100)),
)
SCENE_INDEX = {s.name: i for i, s in enumerate(SCENES)}


@functools.lru_cache(maxsize=64)
def _sky(scene: Scene, size: int) -> Image.Image:
    # Built once per scene and size; every drawing copies it, which is far cheaper than a per-pixel gradient.
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    rows = (1 - t) * np.array(scene.sky_top) + t * np.array(scene.sky_bottom)
    return Image.fromarray(np.broadcast_to(rows, (size, size, 3)).round().astype(np.uint8), "RGB")


def backdrop(scene: Scene, size: int, horizon: float) -> Image.Image:
    """A fresh ``size`` x ``size`` RGB image of ``scene`` with the ground from pixel row ``horizon`` down."""
    img = _sky(scene, size).copy()
    ImageDraw.Draw(img).rectangle([0, horizon, size, size], fill=scene.ground)
    return img
