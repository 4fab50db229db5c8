"""Drawing primitives in skeleton units (standing heights, y up) on a supersampled PIL image."""

from __future__ import annotations

import math
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


class Extent:
    """A stand-in for :class:`Canvas` that draws nothing and records the bounding box of what would be drawn.

    Drawing a sample draws the figure twice, once here to place and scale it so nothing (hat, tail, cape) leaves the
    image.
    """

    def __init__(self):
        self.box = [math.inf, math.inf, -math.inf, -math.inf]  # x0, y0, x1, y1; floats beat numpy at this size

    @property
    def lo(self) -> np.ndarray:
        return np.array(self.box[:2])

    @property
    def hi(self) -> np.ndarray:
        return np.array(self.box[2:])

    def _add(self, p: Sequence[float], r: float = 0.0) -> None:
        x, y, b = float(p[0]), float(p[1]), self.box
        b[0], b[1], b[2], b[3] = min(b[0], x - r), min(b[1], y - r), max(b[2], x + r), max(b[3], y + r)

    def disc(self, p, r, color) -> None:
        self._add(p, r)

    def ellipse(self, p, rx, ry, color) -> None:
        self._add(p, max(rx, ry))

    def capsule(self, a, b, width, color) -> None:
        self._add(a, width / 2)
        self._add(b, width / 2)

    def poly(self, points, color) -> None:
        for p in points:
            self._add(p)

    def line(self, points, width, color) -> None:
        self.poly(points, color)
