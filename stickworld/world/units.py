"""The pose grammar: body-part units with natural phrases, and free poses composed from them.

A pose is the rest pose (standing, arms and legs down, seen from the front or the side) with a few body parts
changed, each by one *unit*: "leaning far forward", "left arm raised", "right knee on the ground", "in the air".
A unit sets only its part's angles (:class:`stickworld.world.skeleton.Pose` fields), so any combination of units on
different parts is a pose, and its caption is the list of its units' phrases: parts a caption does not name are at
rest. Most poses of the grammar have no name; the known actions are named points among them, and the held-out
actions (:mod:`stickworld.heldout`) are unnamed combinations a customization method must learn to call by a name.

Angles mean the same in both views (positive swings a limb outward from the front, forward from the side), so a
unit is either valid in both views (raised, bent) or in one (out to the side: front; forward, back: side).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stickworld.world.skeleton import Pose

PARTS = ("torso", "head", "left_arm", "right_arm", "left_leg", "right_leg", "height")
BOTH, FRONT, SIDE = ("front", "side"), ("front",), ("side",)


@dataclasses.dataclass(frozen=True)
class Unit:
    """One setting of one body part.

    Attributes:
        part: One of :data:`PARTS`.
        key: Short name, unique within the part ("raised").
        phrase: How a caption says it ("left arm raised").
        angles: The :class:`Pose` fields it sets.
        views: The views it is drawn in.
    """

    part: str
    key: str
    phrase: str
    angles: dict
    views: tuple[str, ...] = BOTH

    @property
    def name(self) -> str:
        return f"{self.part}.{self.key}"


def _limb(side: str, kind: str, rows) -> list[Unit]:
    """Units of one arm or leg: (key, phrase with {side}, first angle, second angle, views)."""
    first, second = ("shoulder", "elbow") if kind == "arm" else ("hip", "knee")
    return [Unit(f"{side}_{kind}", key, phrase.format(side=side), {f"{side}_{first}": a, f"{side}_{second}": b}, v)
            for key, phrase, a, b, v in rows]


_ARM = (
    ("raised", "{side} arm raised", 165, 0, BOTH),
    ("up_diagonal", "{side} arm up at an angle", 125, 0, BOTH),
    ("bent_up", "{side} arm bent up", 95, 95, BOTH),
    ("bent_over_head", "{side} arm bent over the head", 120, 120, BOTH),
    ("on_hip", "{side} hand on the hip", 50, -120, FRONT),
    ("out", "{side} arm out to the side", 90, 0, FRONT),
    ("forward", "{side} arm held forward", 80, 0, SIDE),
    ("down_forward", "{side} arm reaching down in front", 50, 0, SIDE),
    ("back", "{side} arm swept back", -45, 0, SIDE),
)
_LEG = (
    ("knee_up", "{side} knee raised", 95, 100, BOTH),
    ("out", "{side} leg out to the side", 40, 0, FRONT),
    ("bent_out", "{side} leg bent outward", 55, 55, FRONT),
    ("forward", "{side} leg kicked forward", 88, 5, SIDE),
    ("squat", "{side} leg squatting", 100, 130, SIDE),
    ("back", "{side} leg stepping back", -25, 10, SIDE),
    ("kneel", "{side} knee on the ground", 0, 90, SIDE),
    ("raised_behind", "{side} leg raised behind", -100, 0, SIDE),
    ("tucked", "{side} leg tucked", -105, 115, SIDE),
)

UNITS: tuple[Unit, ...] = (
    Unit("torso", "lean_left", "leaning to the left", {"lean": 28}, FRONT),
    Unit("torso", "lean_right", "leaning to the right", {"lean": -28}, FRONT),
    Unit("torso", "tilted", "tilted far sideways", {"lean": 100}, FRONT),
    Unit("torso", "lean_forward", "leaning forward", {"lean": 30}, SIDE),
    Unit("torso", "lean_far_forward", "leaning far forward", {"lean": 62}, SIDE),
    Unit("torso", "horizontal", "body horizontal", {"lean": 88}, SIDE),
    Unit("torso", "lean_back", "leaning back", {"lean": -25}, SIDE),
    Unit("torso", "upside_down", "upside down", {"lean": 180}, BOTH),
    Unit("torso", "flipping_back", "flipping backward", {"lean": -135}, SIDE),
    Unit("head", "bowed", "head bowed", {"neck": 22}, BOTH),
    Unit("head", "up", "head tilted up", {"neck": -35}, BOTH),
    *_limb("left", "arm", _ARM), *_limb("right", "arm", _ARM),
    *_limb("left", "leg", _LEG), *_limb("right", "leg", _LEG),
    Unit("height", "in_air", "in the air", {"lift": 0.2}, BOTH),
)
UNIT_INDEX = {u.name: u for u in UNITS}
VIEW_PHRASE = {"front": "", "side": "seen from the side"}


def get_unit(name: str) -> Unit:
    try:
        return UNIT_INDEX[name]
    except KeyError:
        raise KeyError(f"unknown unit {name!r}; known: {', '.join(UNIT_INDEX)}") from None


def compose(view: str, units: list[str | Unit]) -> Pose:
    """The rest pose in ``view`` with each unit's angles set; one unit per part, each valid in ``view``."""
    units = [get_unit(u) if isinstance(u, str) else u for u in units]
    parts = [u.part for u in units]
    if len(set(parts)) != len(parts):
        raise ValueError(f"one unit per body part, got {[u.name for u in units]}")
    for u in units:
        if view not in u.views:
            raise ValueError(f"unit {u.name} is not drawn in the {view} view")
    angles = {k: v for u in units for k, v in u.angles.items()}
    return Pose(view, **angles)


def describe(view: str, units: list[str | Unit]) -> str:
    """The caption phrase of a composed pose: its units in :data:`PARTS` order, the view when it is the side."""
    units = sorted((get_unit(u) if isinstance(u, str) else u for u in units), key=lambda u: PARTS.index(u.part))
    phrases = [u.phrase for u in units] + ([VIEW_PHRASE[view]] if VIEW_PHRASE[view] else [])
    return ", ".join(phrases)


def random_units(rng: np.random.Generator, low: int = 2, high: int = 5) -> tuple[str, list[Unit]]:
    """A free pose: a view, then ``low``..``high`` distinct parts each moved by a random unit valid in that view."""
    view = ("front", "side")[int(rng.integers(2))]
    count = int(rng.integers(low, high + 1))
    parts = [PARTS[i] for i in sorted(rng.choice(len(PARTS), size=count, replace=False))]
    chosen = []
    for part in parts:
        options = [u for u in UNITS if u.part == part and view in u.views]
        chosen.append(options[int(rng.integers(len(options)))])
    return view, chosen
