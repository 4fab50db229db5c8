"""Species parts and accessories on the head: ears, beaks, muzzles, hats, beards, visors.

Points are given in the head's frame in head radii (``fig.h(x, y)``: x to the head's right, which is forward in the
side view, y up), so every part turns and tilts with the head. Each function draws the front and the side view.
"""

from __future__ import annotations

import math

import numpy as np

from stickworld.world.canvas import Canvas, shade
from stickworld.world.figure import Figure, oval, part

DARK = (25, 25, 30)


def _shrink(points: list[np.ndarray], f: float) -> list[np.ndarray]:
    c = sum(points) / len(points)
    return [c + f * (p - c) for p in points]


def _pointy_ears(cv: Canvas, fig: Figure, inner, height: float) -> None:
    ears = [((-0.1, 0.95), (-0.8, 0.55), (-0.5, height)), ((0.35, 0.9), (-0.25, 0.95), (0.1, height + 0.05))] \
        if fig.side else [((s * 0.2, 0.9), (s * 0.95, 0.35), (s * 0.8, height)) for s in (-1, 1)]
    for ear in ears:
        pts = [fig.h(x, y) for x, y in ear]
        cv.poly(pts, fig.palette.head)
        cv.poly(_shrink(pts, 0.5), inner)


@part("cat_ears", "behind_head")
def cat_ears(cv: Canvas, fig: Figure, color) -> None:
    _pointy_ears(cv, fig, color, 1.55)


@part("fox_ears", "behind_head")
def fox_ears(cv: Canvas, fig: Figure, color) -> None:
    _pointy_ears(cv, fig, color, 1.75)


@part("bear_ears", "behind_head")
def bear_ears(cv: Canvas, fig: Figure, color) -> None:
    for x in ((-0.35,) if fig.side else (-0.72, 0.72)):
        cv.disc(fig.h(x, 0.78), 0.4 * fig.hr, color)
        cv.disc(fig.h(x, 0.78), 0.2 * fig.hr, shade(color, 0.75))


@part("rabbit_ears", "behind_head")
def rabbit_ears(cv: Canvas, fig: Figure, color) -> None:
    ears = [((-0.2, 0.6), (-0.9, 2.7)), ((0.15, 0.6), (-0.35, 2.85))] if fig.side else \
        [((s * 0.35, 0.6), (s * 0.6, 2.85)) for s in (-1, 1)]
    for a, b in ears:
        cv.capsule(fig.h(*a), fig.h(*b), 0.6 * fig.hr, fig.palette.head)
        cv.capsule(fig.h(*a), fig.h(*b), 0.25 * fig.hr, color)


@part("whiskers", "head")
def whiskers(cv: Canvas, fig: Figure, color) -> None:
    roots = ((0.8, -0.3, 1),) if fig.side else ((-0.3, -0.3, -1), (0.3, -0.3, 1))
    for x, y, s in roots:
        for dy in (0.15, -0.15):
            cv.line([fig.h(x, y), fig.h(x + s * 0.9, y + dy)], 0.008, color)


def _lower_face(cv: Canvas, fig: Figure, color, side: tuple[float, float, float], width: float, height: float) -> None:
    """A disc (x, y, radius) on the face in profile, a wide oval across the lower face from the front."""
    if fig.side:
        cv.disc(fig.h(side[0], side[1]), side[2] * fig.hr, color)
    else:
        cv.poly(oval(fig.h(0, -0.42), width * fig.hr * fig.right, height * fig.hr * fig.up, 10), color)


@part("muzzle", "head")
def muzzle(cv: Canvas, fig: Figure, color) -> None:
    _lower_face(cv, fig, color, (0.78, -0.32, 0.42), 0.5, 0.38)


@part("nose", "head")
def nose(cv: Canvas, fig: Figure, color) -> None:
    cv.disc(fig.h(1.12, -0.2) if fig.side else fig.h(0, -0.24), 0.15 * fig.hr, color)


@part("beak", "head")
def beak(cv: Canvas, fig: Figure, color) -> None:
    pts = ((0.7, 0.3), (0.7, -0.35), (1.75, -0.15)) if fig.side else ((-0.3, -0.05), (0.3, -0.05), (0, -0.8))
    cv.poly([fig.h(x, y) for x, y in pts], color)


@part("crest", "head")
def crest(cv: Canvas, fig: Figure, color) -> None:
    for tip in (((-0.7, 1.5), (-0.3, 1.7)) if fig.side else ((-0.3, 1.65), (0.25, 1.6))):
        cv.capsule(fig.h(-0.1 if fig.side else 0, 0.8), fig.h(*tip), 0.3 * fig.hr, color)


@part("cheeks", "head")
def cheeks(cv: Canvas, fig: Figure, color) -> None:
    _lower_face(cv, fig, color, (0.35, -0.35, 0.45), 0.62, 0.42)


@part("frog_eyes", "head")
def frog_eyes(cv: Canvas, fig: Figure, color) -> None:
    for x in ((0.35,) if fig.side else (-0.55, 0.55)):
        cv.disc(fig.h(x, 0.75), 0.45 * fig.hr, fig.palette.head)
        cv.disc(fig.h(x, 0.8), 0.32 * fig.hr, color)
        cv.disc(fig.h(x + (0.1 if fig.side else 0), 0.8), 0.16 * fig.hr, DARK)


@part("smile", "head")
def smile(cv: Canvas, fig: Figure, color) -> None:
    pts = ((0.5, -0.3), (0.95, -0.2), (1.25, 0.0)) if fig.side else ((-0.75, -0.15), (0, -0.45), (0.75, -0.15))
    cv.line([fig.h(x, y) for x, y in pts], 0.12 * fig.hr, color)


@part("teeth", "head")
def teeth(cv: Canvas, fig: Figure, color) -> None:
    a, b = ((0.45, -0.55), (0.95, -0.45)) if fig.side else ((-0.35, -0.55), (0.35, -0.55))
    cv.capsule(fig.h(*a), fig.h(*b), 0.14 * fig.hr, color)
    cv.disc(fig.h(0.95, -0.1) if fig.side else fig.h(0, -0.2), 0.12 * fig.hr, color)


@part("beard", "head")
def beard(cv: Canvas, fig: Figure, color) -> None:
    pts = ((0.05, -0.2), (0.98, -0.25), (0.75, -1.1), (0.3, -1.2)) if fig.side else \
        ((-0.85, -0.1), (0.85, -0.1), (0.5, -0.9), (0, -1.55), (-0.5, -0.9))
    cv.poly([fig.h(x, y) for x, y in pts], color)


@part("bald_fringe", "head")
def bald_fringe(cv: Canvas, fig: Figure, color) -> None:
    for x in ((-0.6,) if fig.side else (-0.85, 0.85)):
        cv.disc(fig.h(x, 0.05), 0.38 * fig.hr, color)


def _dome(fig: Figure, r: float, base: float) -> list[np.ndarray]:
    return [fig.h(r * math.sin(a), base + r * math.cos(a)) for a in np.linspace(-math.pi / 2, math.pi / 2, 9)]


@part("cap", "head")
def cap(cv: Canvas, fig: Figure, color) -> None:
    cv.poly(_dome(fig, 1.07, 0.2), color)
    a, b = ((0.3, 0.28), (1.65, 0.2)) if fig.side else ((-1.05, 0.28), (1.05, 0.28))
    cv.capsule(fig.h(*a), fig.h(*b), 0.3 * fig.hr, shade(color, 0.8))


@part("bucket_hat", "head")
def bucket_hat(cv: Canvas, fig: Figure, color) -> None:
    cv.poly(_dome(fig, 0.95, 0.4), color)
    cv.capsule(fig.h(-1.45, 0.38), fig.h(1.45, 0.38), 0.3 * fig.hr, shade(color, 0.85))


@part("wizard_hat", "head")
def wizard_hat(cv: Canvas, fig: Figure, color) -> None:
    tip = (-0.7, 2.5) if fig.side else (0.35, 2.55)
    cv.poly([fig.h(-0.9, 0.55), fig.h(0.9, 0.55), fig.h(*tip)], color)
    cv.capsule(fig.h(-1.4, 0.55), fig.h(1.4, 0.55), 0.28 * fig.hr, color)
    cv.disc(fig.h(tip[0] * 0.5, 1.35), 0.2 * fig.hr, (250, 215, 60))  # a star, at this size a dot


@part("antenna", "head")
def antenna(cv: Canvas, fig: Figure, color) -> None:
    x = -0.1 if fig.side else 0.0
    cv.capsule(fig.h(x, 0.85), fig.h(x, 1.55), 0.14 * fig.hr, shade(fig.palette.head, 0.6))
    cv.disc(fig.h(x, 1.62), 0.25 * fig.hr, color)


@part("visor", "head")
def visor(cv: Canvas, fig: Figure, color) -> None:
    c, rx = (fig.h(0.45, 0.05), 0.6) if fig.side else (fig.h(0, 0.05), 0.78)
    cv.poly(oval(c, rx * fig.hr * fig.right, 0.58 * fig.hr * fig.up, 12), color)
    cv.disc(c + fig.hr * (0.25 * fig.up + 0.25 * fig.right), 0.12 * fig.hr, (220, 220, 240))


@part("visor_slit", "head")
def visor_slit(cv: Canvas, fig: Figure, color) -> None:
    a, b = ((0.2, 0.1), (1.0, 0.1)) if fig.side else ((-0.65, 0.1), (0.65, 0.1))
    cv.capsule(fig.h(*a), fig.h(*b), 0.16 * fig.hr, color)


@part("plume", "head")
def plume(cv: Canvas, fig: Figure, color) -> None:
    pts = ((0, 0.9), (-0.4, 1.75), (-1.1, 1.55)) if fig.side else ((0, 0.9), (0, 1.5), (0.35, 1.95))
    for a, b in zip(pts, pts[1:]):
        cv.capsule(fig.h(*a), fig.h(*b), 0.42 * fig.hr, color)


@part("mask", "head")
def mask(cv: Canvas, fig: Figure, color) -> None:
    a, b = ((0.1, 0.12), (0.98, 0.12)) if fig.side else ((-0.8, 0.12), (0.8, 0.12))
    cv.capsule(fig.h(*a), fig.h(*b), 0.4 * fig.hr, color)
    for x in ((0.55,) if fig.side else (-0.38, 0.38)):
        cv.disc(fig.h(x, 0.12), 0.11 * fig.hr, (250, 250, 250))
