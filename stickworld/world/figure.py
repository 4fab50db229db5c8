"""Drawing one posed actor: body, head and the species parts, in painter's order.

Parts (ears, tails, hats, ...) register themselves in :data:`PARTS` with the layer they belong to; the layers say
where in the painter's order they go, so a tail goes behind the legs and a beard in front of the torso.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from stickworld.world.actors import Actor
from stickworld.world.canvas import Canvas, rot90, shade
from stickworld.world.skeleton import JOINT_INDEX, Pose

LAYERS = ("back", "hips", "torso", "behind_head", "head")
PARTS: dict[str, tuple[str, Callable]] = {}
FAR_SHADE = 0.7  # the far limbs of a side view are darker, so crossed legs stay two legs


def part(name: str, layer: str):
    """Register ``fn(canvas, figure, colour)`` as the drawing of part ``name`` in ``layer``."""
    assert layer in LAYERS, layer

    def register(fn):
        PARTS[name] = (layer, fn)
        return fn

    return register


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.hypot(*v) or 1.0)


@dataclasses.dataclass
class Figure:
    """A posed actor's geometry in skeleton units, with the frames parts are placed in.

    Attributes:
        joints: (14, 2) joint positions, y up.
        pose: The pose they came from (its view decides front or profile drawing).
        actor: Who is drawn.
    """

    joints: np.ndarray
    pose: Pose
    actor: Actor

    def __post_init__(self):
        self.side = self.pose.view == "side"
        self.build, self.palette = self.actor.build, self.actor.palette
        self.hr = self.build.head
        self.head_c, self.neck = self["head"], self["neck"]
        self.pelvis = (self["left_hip"] + self["right_hip"]) / 2
        self.up = _unit(self.head_c - self.neck)  # the head's axis
        self.right = rot90(self.up)  # the head's image-right; its forward in the side view
        self.torso_up = _unit(self.neck - self.pelvis)
        self.torso_right = rot90(self.torso_up)

    def __getitem__(self, joint: str) -> np.ndarray:
        return self.joints[JOINT_INDEX[joint]]

    def h(self, x: float, y: float) -> np.ndarray:
        """A point in the head's frame, in head radii: ``x`` to its right (forward), ``y`` up."""
        return self.head_c + self.hr * (x * self.right + y * self.up)

    def t(self, x: float, y: float) -> np.ndarray:
        """A point in the torso's frame from the pelvis, in height units: ``x`` to its right, ``y`` up."""
        return self.pelvis + x * self.torso_right + y * self.torso_up


def oval(center: np.ndarray, a: np.ndarray, b: np.ndarray, n: int = 14) -> list[np.ndarray]:
    """Polygon of an ellipse with semi-axis vectors ``a`` and ``b``: ellipses that turn with the body."""
    return [center + math.cos(t) * a + math.sin(t) * b for t in np.linspace(0, 2 * math.pi, n, endpoint=False)]


def _limbs(cv: Canvas, fig: Figure, side: str, kind: str, dim: float) -> None:
    b, p = fig.build, fig.palette
    c = lambda col: shade(col, dim)  # noqa: E731
    if kind == "leg":
        hip, knee, foot = fig[f"{side}_hip"], fig[f"{side}_knee"], fig[f"{side}_foot"]
        w = b.limb * b.leg
        cv.capsule(hip, knee, w, c(p.thigh))
        cv.capsule(knee, foot, w * 0.9, c(p.shin))
        # Feet point forward in profile and outward from the front; turning with the shin keeps kneels readable.
        d = _unit(foot - knee)
        m = -1.0 if (side == "right" and not fig.side) else 1.0
        toe = foot + m * (0.055 if fig.side else 0.03) * np.array([-d[1], d[0]])
        cv.capsule(foot, toe, max(w, 0.035), c(p.foot))
    else:
        shoulder, elbow, hand = fig[f"{side}_shoulder"], fig[f"{side}_elbow"], fig[f"{side}_hand"]
        cv.capsule(shoulder, elbow, b.limb, c(p.upper_arm))
        cv.capsule(elbow, hand, b.limb * 0.9, c(p.forearm))
        cv.disc(hand, b.limb * 0.62, c(p.hand))


def _torso(cv: Canvas, fig: Figure) -> None:
    b, col = fig.build, fig.palette.torso
    cv.capsule(fig.neck, fig.h(0, -0.5), b.limb * 0.8, fig.palette.head)
    mid = (fig.neck + fig.pelvis) / 2
    half = b.torso / 2 + b.limb * 0.35
    if fig.actor.torso_shape == "oval":
        width = b.chest * 1.15 if fig.side else b.shoulder_width + b.limb * 0.3
        cv.poly(oval(mid, width * fig.torso_right, half * fig.torso_up), col)
    elif fig.side:
        cv.capsule(fig.pelvis, fig.neck - 0.01 * fig.torso_up, 2 * b.chest, col)
    else:
        top, bottom = b.shoulder_width + b.limb * 0.35, b.hip_width + b.limb * 0.5
        cv.poly([fig.t(top, b.torso), fig.t(-top, b.torso), fig.t(-bottom, -0.02), fig.t(bottom, -0.02)], col)
        for s in ("left", "right"):
            cv.disc(fig[f"{s}_shoulder"], b.limb * 0.75, col)


def _head(cv: Canvas, fig: Figure) -> None:
    shape, col, hr = fig.actor.head_shape, fig.palette.head, fig.hr
    if shape == "box":
        cv.poly([fig.h(0.95, 0.9), fig.h(-0.95, 0.9), fig.h(-0.95, -0.9), fig.h(0.95, -0.9)], col)
    elif shape == "wide":
        cv.poly(oval(fig.head_c, 1.3 * hr * fig.right, 0.85 * hr * fig.up), col)
    else:
        cv.disc(fig.head_c, hr * (1.15 if shape == "helmet" else 1.0), col)
    eye = fig.palette.eye
    if eye is not None:
        r = fig.actor.eye_size * hr
        for x in ((0.55,) if fig.side else (-0.38, 0.38)):
            cv.disc(fig.h(x, 0.1), r, eye)


def _parts(cv: Canvas, fig: Figure, layer: str) -> None:
    for name, color in fig.actor.parts:
        part_layer, draw = PARTS[name]
        if part_layer == layer:
            draw(cv, fig, color)


def draw_figure(cv: Canvas, fig: Figure) -> None:
    """Paint ``fig`` back to front: behind-the-body parts, far limbs, legs, torso, head, near arms."""
    _parts(cv, fig, "back")
    if fig.side:
        _limbs(cv, fig, "left", "arm", FAR_SHADE)
        _limbs(cv, fig, "left", "leg", FAR_SHADE)
        _limbs(cv, fig, "right", "leg", 1.0)
    else:
        _limbs(cv, fig, "left", "leg", 1.0)
        _limbs(cv, fig, "right", "leg", 1.0)
    _parts(cv, fig, "hips")
    _torso(cv, fig)
    _parts(cv, fig, "torso")
    _parts(cv, fig, "behind_head")
    _head(cv, fig)
    _parts(cv, fig, "head")
    for s in (("right",) if fig.side else ("left", "right")):
        _limbs(cv, fig, s, "arm", 1.0)
