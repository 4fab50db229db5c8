"""Species parts and accessories worn on the body: hair, tails, clothes, capes, backpacks.

Every part draws in both views: from the front it is symmetric about the torso's axis, in profile the actor faces
image right, so "behind" is the torso frame's negative x.
"""

from __future__ import annotations

import numpy as np

from stickworld.world.canvas import Canvas, shade
from stickworld.world.figure import Figure, oval, part


def _chain(cv: Canvas, points: list[np.ndarray], width: float, color) -> None:
    for a, b in zip(points, points[1:]):
        cv.capsule(a, b, width, color)


@part("long_hair", "back")
def long_hair(cv: Canvas, fig: Figure, color) -> None:
    if fig.side:
        cv.disc(fig.h(-0.1, 0.1), fig.hr * 1.12, color)
        cv.capsule(fig.h(-0.3, 0.0), fig.h(-0.9, -1.7), fig.hr * 1.5, color)
    else:
        cv.disc(fig.h(0, 0.1), fig.hr * 1.18, color)
        cv.capsule(fig.h(0, -0.2), fig.h(0, -1.75), fig.hr * 2.3, color)


def _skirt(cv: Canvas, fig: Figure, color, length: float) -> None:
    # Hem points ride the legs (``length`` 1 = the knees, 2 = the feet) so the skirt follows kicks and splits.
    hem = []
    for s in ("left", "right"):
        hip, knee, foot = fig[f"{s}_hip"], fig[f"{s}_knee"], fig[f"{s}_foot"]
        hem.append(hip + length * (knee - hip) if length <= 1 else knee + (length - 1) * (foot - knee))
    lo, hi = sorted(hem, key=lambda p: float(p @ fig.torso_right))
    w = fig.build.chest if fig.side else fig.build.hip_width + 0.035
    flare = 0.05 * fig.torso_right
    cv.poly([fig.t(-w, 0.05), fig.t(w, 0.05), hi + flare, lo - flare], color)


@part("skirt", "hips")
def skirt(cv: Canvas, fig: Figure, color) -> None:
    _skirt(cv, fig, color, 0.85)


@part("robe", "hips")
def robe(cv: Canvas, fig: Figure, color) -> None:
    _skirt(cv, fig, color, 1.8)


@part("backpack", "back")
def backpack(cv: Canvas, fig: Figure, color) -> None:
    b = fig.build
    if fig.side:
        x0, x1 = -b.chest + 0.01, -b.chest - 0.09
        cv.poly([fig.t(x0, b.torso - 0.02), fig.t(x1, b.torso - 0.03), fig.t(x1, 0.06), fig.t(x0, 0.05)], color)
    else:
        w = b.shoulder_width + b.limb * 0.35 + 0.03
        cv.poly([fig.t(w, b.torso), fig.t(-w, b.torso), fig.t(-w, 0.07), fig.t(w, 0.07)], color)


@part("straps", "torso")
def straps(cv: Canvas, fig: Figure, color) -> None:
    b = fig.build
    xs = (0.3 * b.chest,) if fig.side else (-0.6 * b.shoulder_width, 0.6 * b.shoulder_width)
    for x in xs:
        cv.capsule(fig.t(x, b.torso - 0.01), fig.t(x * 1.1, 0.08), 0.022, color)


@part("cape", "back")
def cape(cv: Canvas, fig: Figure, color) -> None:
    b = fig.build
    if fig.side:  # streams out behind, as capes do in pictures
        cv.poly([fig.t(0, b.torso), fig.t(-b.chest, b.torso - 0.02), fig.t(-b.chest - 0.24, -0.14),
                 fig.t(-b.chest - 0.06, -0.2)], color)
    else:
        w = b.shoulder_width + 0.02
        cv.poly([fig.t(w, b.torso - 0.01), fig.t(-w, b.torso - 0.01), fig.t(-w - 0.09, -0.19),
                 fig.t(w + 0.09, -0.19)], color)


@part("cat_tail", "back")
def cat_tail(cv: Canvas, fig: Figure, color) -> None:
    pts = ((-0.05, 0.02), (-0.15, 0.0), (-0.23, 0.07), (-0.25, 0.18)) if fig.side else \
        ((0.06, 0.0), (0.17, 0.02), (0.23, 0.1), (0.22, 0.2))
    _chain(cv, [fig.t(x, y) for x, y in pts], 0.035, color)


@part("fox_tail", "back")
def fox_tail(cv: Canvas, fig: Figure, color) -> None:
    sign = -1.0 if fig.side else 1.0
    base, tip = fig.t(sign * 0.06, 0.02), fig.t(sign * 0.22, -0.04)
    cv.capsule(base, tip, 0.1, color)
    cv.disc(fig.t(sign * 0.26, -0.05), 0.045, (250, 250, 245))


@part("bunny_tail", "back")
def bunny_tail(cv: Canvas, fig: Figure, color) -> None:
    if fig.side:
        cv.disc(fig.t(-fig.build.chest - 0.01, 0.03), 0.045, color)


@part("tail_feathers", "back")
def tail_feathers(cv: Canvas, fig: Figure, color) -> None:
    if fig.side:
        cv.poly([fig.t(-0.02, 0.06), fig.t(-0.24, -0.13), fig.t(-0.16, -0.18)], color)
    else:
        cv.poly([fig.t(-0.06, 0.02), fig.t(0.06, 0.02), fig.t(0.0, -0.2)], color)


@part("belly", "torso")
def belly(cv: Canvas, fig: Figure, color) -> None:
    b = fig.build
    x, rx = (b.chest * 0.35, b.chest * 0.72) if fig.side else (0.0, b.shoulder_width * 0.75)
    cv.poly(oval(fig.t(x, b.torso * 0.42), rx * fig.torso_right, b.torso * 0.36 * fig.torso_up), color)


def _badge(cv: Canvas, fig: Figure, color, x: float, y: float, half: float) -> None:
    if fig.side:
        x = fig.build.chest * 0.5
    c, r, u = fig.t(x, y), half * fig.torso_right, half * 0.75 * fig.torso_up
    cv.poly([c + r + u, c - r + u, c - r - u, c + r - u], color)


@part("panel", "torso")
def panel(cv: Canvas, fig: Figure, color) -> None:
    _badge(cv, fig, color, 0.0, fig.build.torso * 0.62, 0.045)


@part("flag_patch", "torso")
def flag_patch(cv: Canvas, fig: Figure, color) -> None:
    _badge(cv, fig, color, 0.045, fig.build.torso * 0.7, 0.025)


@part("tabard", "torso")
def tabard(cv: Canvas, fig: Figure, color) -> None:
    b = fig.build
    x0, x1 = (0.0, b.chest) if fig.side else (-0.05, 0.05)
    cv.poly([fig.t(x1, b.torso - 0.02), fig.t(x0, b.torso - 0.02), fig.t(x0 - 0.01, -0.07),
             fig.t(x1 + 0.01, -0.07)], color)


@part("belt", "torso")
def belt(cv: Canvas, fig: Figure, color) -> None:
    w = fig.build.chest if fig.side else fig.build.hip_width + fig.build.limb * 0.45
    cv.capsule(fig.t(-w, 0.04), fig.t(w, 0.04), 0.028, color)


@part("scarf", "torso")
def scarf(cv: Canvas, fig: Figure, color) -> None:
    b = fig.build
    top = b.torso + 0.005
    if fig.side:
        cv.capsule(fig.t(-b.chest * 0.8, top), fig.t(b.chest * 0.8, top), 0.05, color)
        cv.capsule(fig.t(-b.chest * 0.6, top), fig.t(-b.chest - 0.1, top - 0.06), 0.04, color)
    else:
        cv.capsule(fig.t(-b.shoulder_width * 0.75, top), fig.t(b.shoulder_width * 0.75, top), 0.05, color)
        cv.capsule(fig.t(b.shoulder_width * 0.4, top), fig.t(b.shoulder_width * 0.5, top - 0.14), 0.04,
                   shade(color, 0.85))


@part("ribs", "torso")
def ribs(cv: Canvas, fig: Figure, color) -> None:
    b = fig.build
    w = b.chest * 0.8 if fig.side else b.shoulder_width * 0.8
    for y in (0.5, 0.65, 0.8):
        cv.capsule(fig.t(-w, b.torso * y), fig.t(w, b.torso * y), 0.014, color)
    cv.capsule(fig.t(0, 0.04), fig.t(0, b.torso * 0.4), 0.014, color)
