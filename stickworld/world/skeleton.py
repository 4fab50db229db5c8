"""A 14-joint planar skeleton driven by joint angles, seen from the front or from the side.

Angles are in degrees and all mean the same thing in both views: positive swings a limb *away from rest*, outward
(away from the body's midline) in the front view and forward in the side view, so one table of poses can use either
view. Coordinates are in units of a standard adult's standing height, y up, the pelvis at the origin.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# The joint set of the LSP / MPII-style 14-keypoint pose benchmarks, with the head's centre for the head top.
JOINTS = (
    "head", "neck",
    "right_shoulder", "right_elbow", "right_hand", "left_shoulder", "left_elbow", "left_hand",
    "right_hip", "right_knee", "right_foot", "left_hip", "left_knee", "left_foot",
)
JOINT_INDEX = {name: i for i, name in enumerate(JOINTS)}
VIEWS = ("front", "side")
SHOULDER_DROP = 0.035  # shoulders sit a little below the base of the neck


@dataclasses.dataclass(frozen=True)
class Build:
    """Body proportions of one kind of actor, in standing-height units (a cartoon adult by default).

    Attributes:
        torso: Pelvis to base of the neck.
        neck: Base of the neck to the bottom of the head.
        head: Head radius; cartoon-large so faces and hats survive at 64 pixels.
        upper_arm, forearm, thigh, shin: Limb segment lengths.
        shoulder_width, hip_width: Half the distance between the shoulders / hips in the front view.
        chest: Half the torso's depth, i.e. its half-width in the side view.
        limb: Arm thickness.
        leg: Leg thickness relative to the arms (birds stand on sticks, bears on pillars).
    """

    torso: float = 0.28
    neck: float = 0.03
    head: float = 0.09
    upper_arm: float = 0.17
    forearm: float = 0.17
    thigh: float = 0.21
    shin: float = 0.21
    shoulder_width: float = 0.09
    hip_width: float = 0.055
    chest: float = 0.07
    limb: float = 0.05
    leg: float = 1.15


@dataclasses.dataclass(frozen=True)
class Pose:
    """Joint angles of one pose, and how it is seen.

    Attributes:
        view: "front" (facing the camera; the actor's left is the image's right) or "side" (facing image right;
            the actor's right limbs are nearest the camera).
        lean: Torso tilt from vertical; positive tilts the top towards image right (forward in the side view).
        neck: Head tilt relative to the torso, same sense as ``lean``.
        left_shoulder, right_shoulder: Upper arm relative to the torso's downward axis.
        left_elbow, right_elbow: Forearm relative to the upper arm; positive keeps turning the same way, so a raised
            arm's forearm folds up and over.
        left_hip, right_hip: Thigh from straight down (absolute, not relative to the torso, so bows keep legs still).
        left_knee, right_knee: Knee flexion; positive folds the shin back (inward in the front view).
        lift: Height of the lowest point above the ground (jumps, flights).
    """

    view: str = "front"
    lean: float = 0.0
    neck: float = 0.0
    left_shoulder: float = 8.0
    left_elbow: float = 0.0
    right_shoulder: float = 8.0
    right_elbow: float = 0.0
    left_hip: float = 3.0
    left_knee: float = 0.0
    right_hip: float = 3.0
    right_knee: float = 0.0
    lift: float = 0.0

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {self.view!r}")


ANGLES = tuple(f.name for f in dataclasses.fields(Pose) if f.name not in ("view", "lift"))


def direction(angle: float) -> np.ndarray:
    """Unit vector for an angle measured from straight down, turning towards +x (counter-clockwise, y up)."""
    rad = math.radians(angle)
    return np.array([math.sin(rad), -math.cos(rad)])


def forward_kinematics(pose: Pose, build: Build = Build()) -> np.ndarray:
    """Joint positions of ``pose`` on a body of ``build``.

    Args:
        pose: Joint angles and view.
        build: Segment lengths.

    Returns:
        (14, 2) float array in :data:`JOINTS` order, standing-height units, y up, pelvis at the origin.
    """
    b = build
    up = direction(180.0 - pose.lean)
    across = np.array([up[1], -up[0]])  # the torso's own "image right"
    spread = 1.0 if pose.view == "front" else 0.0
    out = np.zeros((len(JOINTS), 2))
    neck = b.torso * up
    out[1] = neck
    out[0] = neck + (b.neck + b.head) * direction(180.0 - pose.lean - pose.neck)
    # Mirror sign per side: in the front view the actor's left is image right, so its outward is +x.
    for side, m in (("left", 1.0), ("right", -1.0 if spread else 1.0)):
        lateral = m * spread * across
        shoulder = neck - SHOULDER_DROP * up + b.shoulder_width * lateral
        upper = -pose.lean + m * getattr(pose, f"{side}_shoulder")
        fore = upper + m * getattr(pose, f"{side}_elbow")
        elbow = shoulder + b.upper_arm * direction(upper)
        hip = b.hip_width * lateral
        thigh = m * getattr(pose, f"{side}_hip")
        knee = hip + b.thigh * direction(thigh)
        shin = thigh - m * getattr(pose, f"{side}_knee")
        rows = (shoulder, elbow, elbow + b.forearm * direction(fore), hip, knee, knee + b.shin * direction(shin))
        names = ("shoulder", "elbow", "hand", "hip", "knee", "foot")
        for name, row in zip(names, rows):
            out[JOINT_INDEX[f"{side}_{name}"]] = row
    return out


def jitter(pose: Pose, rng: np.random.Generator, degrees: float = 6.0) -> Pose:
    """``pose`` with every angle moved uniformly by up to ``degrees``: the same action, a different take."""
    noise = rng.uniform(-degrees, degrees, size=len(ANGLES))
    return dataclasses.replace(pose, **{a: getattr(pose, a) + d for a, d in zip(ANGLES, noise)})


def normalize(joints: np.ndarray) -> np.ndarray:
    """[..., 14, 2] joints -> centred on their mean, scaled to unit RMS distance from it: a pose with its position
    and size in the frame removed, as scoring and the action encoder compare poses."""
    centred = joints - joints.mean(-2, keepdims=True)
    radius = np.sqrt((centred**2).sum(-1).mean(-1))[..., None, None]
    return centred / np.maximum(radius, 1e-6)
