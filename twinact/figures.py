"""Procedural exemplar images: a 2-D articulated stick-and-capsule human figure.

The machines twinact runs on have no network, so the default action ships
exemplars that are rendered here from joint angles with PIL alone. The figure is
seen from the side, facing +x (right), so its right limbs are nearest the viewer.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Segment lengths as fractions of the standing height, roughly adult proportions.
TORSO, NECK, UPPER_ARM, FOREARM, THIGH, SHIN = 0.30, 0.06, 0.19, 0.20, 0.24, 0.25
SHOULDER_DROP = 0.04  # shoulders sit a little below the top of the spine
SUPERSAMPLE = 3  # draw large then downscale: anti-aliased edges without aggdraw


@dataclasses.dataclass(frozen=True)
class Pose:
    """Joint angles in degrees; the pelvis is the root of the kinematic chain.

    Positive values always mean "towards the direction the figure faces" for a
    relaxed limb, so a standing figure is all zeros.

    Attributes:
        lean: Torso tilt from vertical; positive leans forward.
        neck: Head tilt relative to the torso; negative lifts the chin (head up).
        left_shoulder, right_shoulder: Upper arm relative to the torso's downward
            axis; positive swings the arm forward, negative backward.
        left_elbow, right_elbow: Elbow flexion (forearm folds forward).
        left_hip, right_hip: Thigh from straight down; positive lifts it forward.
        left_knee, right_knee: Knee flexion (shin folds backward).
    """

    lean: float = 0.0
    neck: float = 0.0
    left_shoulder: float = 0.0
    left_elbow: float = 0.0
    right_shoulder: float = 0.0
    right_elbow: float = 0.0
    left_hip: float = 0.0
    left_knee: float = 0.0
    right_hip: float = 0.0
    right_knee: float = 0.0


POSES: dict[str, Pose] = {
    "standing": Pose(left_shoulder=-6, left_elbow=10, right_shoulder=6, right_elbow=12,
                     left_hip=-4, left_knee=3, right_hip=4, right_knee=3),
    # Superhero landing: near (right) knee down with the shin flat behind, near
    # fist planted ahead of it, far foot planted forward, far arm flung back and up.
    "three_point_landing": Pose(lean=62, neck=-50, right_shoulder=76, right_elbow=0,
                                left_shoulder=-52, left_elbow=5,
                                right_hip=-8, right_knee=84, left_hip=94, left_knee=98),
    "arms_raised": Pose(left_shoulder=170, right_shoulder=175, left_elbow=5, right_elbow=5),
}


def _direction(angle: float) -> np.ndarray:
    """Unit vector for an absolute angle measured from straight down, counter-clockwise."""
    rad = math.radians(angle)
    return np.array([math.sin(rad), -math.cos(rad)])


def forward_kinematics(pose: Pose) -> dict[str, np.ndarray]:
    """Compute 2-D joint positions (y up, pelvis at the origin) for ``pose``.

    Args:
        pose: Joint angles.

    Returns:
        Mapping from joint name to an (x, y) array in standing-height units.
    """
    # Absolute angles accumulate down the chain; leaning forward is clockwise.
    torso = 180.0 - pose.lean
    j = {"pelvis": np.zeros(2)}
    j["neck"] = j["pelvis"] + TORSO * _direction(torso)
    shoulder = j["pelvis"] + (TORSO - SHOULDER_DROP) * _direction(torso)
    j["head"] = j["neck"] + NECK * _direction(torso - pose.neck)
    for side in ("left", "right"):
        upper = torso + 180.0 + getattr(pose, f"{side}_shoulder")
        lower = upper + getattr(pose, f"{side}_elbow")
        j[f"{side}_shoulder"] = shoulder
        j[f"{side}_elbow"] = shoulder + UPPER_ARM * _direction(upper)
        j[f"{side}_hand"] = j[f"{side}_elbow"] + FOREARM * _direction(lower)
        thigh = getattr(pose, f"{side}_hip")
        shin = thigh - getattr(pose, f"{side}_knee")
        j[f"{side}_hip"] = j["pelvis"]
        j[f"{side}_knee"] = j["pelvis"] + THIGH * _direction(thigh)
        j[f"{side}_foot"] = j[f"{side}_knee"] + SHIN * _direction(shin)
    return j


def jitter_pose(pose: Pose, rng: np.random.Generator, degrees: float = 4.0) -> Pose:
    """Return ``pose`` with every angle perturbed uniformly by up to ``degrees``."""
    return Pose(**{f.name: getattr(pose, f.name) + rng.uniform(-degrees, degrees)
                   for f in dataclasses.fields(Pose)})


def _shade(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, c * factor))) for c in color)


def render_figure(pose: Pose, size: int = 256, *, body_color=(40, 60, 110),
                  background=(235, 235, 228), limb_width: float = 0.055,
                  head_radius: float = 0.065, scale: float = 0.8,
                  center: tuple[float, float] = (0.5, 0.5), ground: bool = True,
                  seed: int | None = None, jitter_deg: float = 3.0) -> Image.Image:
    """Render ``pose`` as a flat-coloured figure on a plain background.

    Args:
        pose: Joint angles to draw.
        size: Output width and height in pixels.
        body_color: RGB of the near-side limbs, torso and head; far-side limbs
            are drawn darker so overlapping limbs stay distinguishable.
        background: RGB of the backdrop; the ground band is a darker shade of it.
        limb_width: Limb thickness as a fraction of standing height.
        head_radius: Head radius as a fraction of standing height.
        scale: Fraction of the image the figure's longer extent occupies (<= ~0.95).
        center: Where the figure's bounding-box centre goes, as image fractions.
            It is clamped so the whole figure stays inside the image.
        ground: Draw a ground band just below the figure's lowest point.
        seed: If given, angles are perturbed by up to ``jitter_deg`` degrees
            with this seed; ``None`` draws the pose exactly.
        jitter_deg: Size of the seeded angle perturbation.

    Returns:
        An RGB image of ``size`` x ``size`` pixels.
    """
    if seed is not None:
        pose = jitter_pose(pose, np.random.default_rng(seed), jitter_deg)
    joints = forward_kinematics(pose)
    joints["skull"] = joints["head"] + head_radius * _direction(180.0 - pose.lean - pose.neck)
    # Pad the box by the widest drawn half-thickness (torso caps, 0.8 * width) so
    # nothing is clipped, and the ground band meets the lowest limb.
    pts = np.array(list(joints.values()))
    lo = np.minimum(pts.min(0) - 0.8 * limb_width, joints["skull"] - head_radius)
    hi = np.maximum(pts.max(0) + 0.8 * limb_width, joints["skull"] + head_radius)
    big = size * SUPERSAMPLE
    px_per_unit = scale * big / float(max(hi - lo))
    half = (hi - lo) * px_per_unit / 2 + 2 * SUPERSAMPLE  # + room for resampling blur
    cx, cy = (min(max(c * big, h), big - h) for c, h in zip(center, half))
    mid = (lo + hi) / 2

    def to_px(name: str) -> tuple[float, float]:
        # Image y grows downward, the skeleton's y grows upward.
        p = joints[name]
        return cx + (p[0] - mid[0]) * px_per_unit, cy - (p[1] - mid[1]) * px_per_unit

    img = Image.new("RGB", (big, big), tuple(background))
    draw = ImageDraw.Draw(img)
    if ground:
        draw.rectangle([0, cy + half[1] - 2 * SUPERSAMPLE, big, big],
                       fill=_shade(background, 0.82))

    def disc(xy: tuple[float, float], r: float, color) -> None:
        draw.ellipse([xy[0] - r, xy[1] - r, xy[0] + r, xy[1] + r], fill=color)

    def capsule(a: str, b: str, color, w: float) -> None:
        # A thick line plus discs at both ends gives round caps and smooth joints.
        draw.line([to_px(a), to_px(b)], fill=color, width=int(round(w)))
        disc(to_px(a), w / 2, color)
        disc(to_px(b), w / 2, color)

    width = max(2.0, limb_width * px_per_unit)
    body, far = tuple(body_color), _shade(body_color, 0.62)
    # Painter's order: far (left) limbs, then torso and head, then near (right) limbs.
    for side, color in (("left", far), ("right", body)):
        if side == "right":
            capsule("pelvis", "neck", body, width * 1.6)
            capsule("neck", "head", body, width * 0.8)
            disc(to_px("skull"), head_radius * px_per_unit, body)
            # An eye on the facing side shows where the head is looking.
            joints["eye"] = (joints["skull"] + np.array([0.0, 0.15 * head_radius])
                             + 0.45 * head_radius * _direction(90.0 - pose.lean - pose.neck))
            disc(to_px("eye"), max(1.5, 0.16 * head_radius * px_per_unit), tuple(background))
        capsule(f"{side}_hip", f"{side}_knee", color, width * 1.15)
        capsule(f"{side}_knee", f"{side}_foot", color, width)
        capsule(f"{side}_shoulder", f"{side}_elbow", color, width)
        capsule(f"{side}_elbow", f"{side}_hand", color, width * 0.9)
        disc(to_px(f"{side}_hand"), width * 0.7, color)  # a fist reads better than a stump
    return img.resize((size, size), Image.Resampling.LANCZOS)


def _random_colors(rng: np.random.Generator, light_on_dark: bool) -> tuple[tuple, tuple]:
    """Pick a contrasting (body, background) pair with unrelated hues."""
    hue = rng.uniform()
    body = colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.9), rng.uniform(0.25, 0.55))
    bg = colorsys.hsv_to_rgb((hue + rng.uniform(0.25, 0.75)) % 1.0,
                             rng.uniform(0.05, 0.35), rng.uniform(0.82, 0.98))
    if light_on_dark:
        body, bg = bg, body
    as_rgb = lambda c: tuple(int(round(v * 255)) for v in c)  # noqa: E731
    return as_rgb(body), as_rgb(bg)


def render_exemplars(pose_name: str, out_dir: str | Path, n: int = 6, size: int = 256,
                     seed: int = 0) -> list[Path]:
    """Write ``n`` PNG exemplars of one named pose with varied appearance.

    Pose, placement and scale are jittered only slightly while colours and limb
    thickness vary a lot, so the action is what the exemplars have in common.

    Args:
        pose_name: Key of :data:`POSES`.
        out_dir: Directory to write ``{pose_name}_{i:02d}.png`` into (created).
        n: Number of images.
        size: Image width and height in pixels.
        seed: Seed for every random choice; equal seeds give identical files.

    Returns:
        Paths of the written files, in order.
    """
    pose = POSES[pose_name]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        # Every third image is light-on-dark so brightness is not a shared cue.
        body, bg = _random_colors(rng, light_on_dark=i % 3 == 2)
        img = render_figure(
            jitter_pose(pose, rng, 4.0), size, body_color=body, background=bg,
            limb_width=rng.uniform(0.045, 0.07), head_radius=rng.uniform(0.06, 0.072),
            scale=rng.uniform(0.72, 0.86),
            center=(0.5 + rng.uniform(-0.06, 0.06), 0.5 + rng.uniform(-0.05, 0.05)))
        path = out / f"{pose_name}_{i:02d}.png"
        img.save(path, optimize=True)
        paths.append(path)
    return paths


if __name__ == "__main__":
    # python -m twinact.figures POSE [OUT_DIR]; the default matches the packaged data layout.
    name = sys.argv[1] if len(sys.argv) > 1 else "three_point_landing"
    for written in render_exemplars(name, sys.argv[2] if len(sys.argv) > 2
                                    else f"twinact/data/actions/{name}"):
        print(written)
