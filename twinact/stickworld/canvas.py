"""Drawing primitives in skeleton units (standing heights, y up) on a supersampled PIL image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import ImageDraw

RGB = tuple[int, int, int]


def shade(color: RGB, factor: float) -> RGB:
    """``color`` scaled by ``factor`` (below 1 darkens, above 1 lightens), clipped to 0..255."""
    return tuple(int(min(255, max(0, c * factor))) for c in color)


class Canvas:
    """Maps skeleton coordinates to pixels and draws filled shapes there.

    Args:
        image: The (supersampled) RGB image to draw on.
        origin: Pixel position of the skeleton origin.
        scale: Pixels per standing-height unit.
    """

    def __init__(self, image, origin: tuple[float, float], scale: float):
        self.draw = ImageDraw.Draw(image)
        self.ox, self.oy = origin
        self.scale = scale

    def px(self, p: Sequence[float]) -> tuple[float, float]:
        """Pixel position of skeleton point ``p`` (image y grows downward, the skeleton's upward)."""
        return self.ox + p[0] * self.scale, self.oy - p[1] * self.scale

    def disc(self, p: Sequence[float], r: float, color: RGB) -> None:
        """A filled circle of radius ``r`` around ``p``."""
        x, y = self.px(p)
        r = max(r * self.scale, 0.6)
        self.draw.ellipse([x - r, y - r, x + r, y + r], fill=color)

    def ellipse(self, p: Sequence[float], rx: float, ry: float, color: RGB) -> None:
        """An axis-aligned filled ellipse around ``p``."""
        x, y = self.px(p)
        rx, ry = rx * self.scale, ry * self.scale
        self.draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=color)

    def capsule(self, a: Sequence[float], b: Sequence[float], width: float, color: RGB) -> None:
        """A thick segment from ``a`` to ``b`` with round caps: a limb, a tail, a strap."""
        pa, pb = self.px(a), self.px(b)
        w = max(width * self.scale, 1.0)
        self.draw.line([pa, pb], fill=color, width=int(round(w)))
        r = w / 2
        for x, y in (pa, pb):
            self.draw.ellipse([x - r, y - r, x + r, y + r], fill=color)

    def poly(self, points: Sequence[Sequence[float]], color: RGB) -> None:
        """A filled polygon through ``points``."""
        self.draw.polygon([self.px(p) for p in points], fill=color)

    def line(self, points: Sequence[Sequence[float]], width: float, color: RGB) -> None:
        """A polyline with joints, for thin details (whiskers, antennae, straps)."""
        self.draw.line([self.px(p) for p in points], fill=color, width=max(1, int(round(width * self.scale))),
                       joint="curve")


def rot90(v: np.ndarray) -> np.ndarray:
    """``v`` turned a quarter clockwise: the "right" of an "up" vector."""
    return np.array([v[1], -v[0]])
