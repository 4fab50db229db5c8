"""The pretraining distribution of the StickWorld base model 2: known actions by name, free poses by their units,
actors alone, and scenes named.

Each example is a random actor in a random scene doing either a known action (:mod:`stickworld.actions`) or a free
pose of the grammar (:mod:`stickworld.units`); its caption says one of:

- the known action's phrase ("a robot doing a lunge");
- the free pose's unit phrases ("a fox leaning far forward, left arm swept back, seen from the side");
- the actor only ("a photo of a penguin"), whatever it is doing;

and, for a share of them, the scene ("... on a beach"). Held-out actions are never named; their poses occur among
the free poses at the grammar's own frequency, unnamed, as a pose a real model has seen but cannot name.

How many parts a free pose moves can follow a curriculum over the training steps (:func:`units_at`), e.g. one or
two units first, so single units are learnt before the model has to bind several.
"""

from __future__ import annotations

import numpy as np

from stickworld.actions import ACTIONS, KNOWN_ACTIONS, Action
from stickworld.actors import ACTORS, get_actor
from stickworld.render import ACTOR_IDS, CAPTION_TEMPLATES, render
from stickworld.scenes import SCENES
from stickworld.units import PARTS, compose, describe, random_units

# Shares of the caption kinds (known by name, free pose by units, actor only); the rest is empty (classifier-free
# guidance), set by the trainer.
MIX = {"name": 0.45, "units": 0.45, "actor": 0.10}
SCENE_SHARE = 0.2  # captions that also name the backdrop
SCENE_PHRASES = {"meadow": "in a meadow", "beach": "on a beach", "snow": "in the snow", "night": "at night",
                 "sunset": "at sunset", "studio": "in a studio", "room": "in a room", "desert": "in the desert"}
ACTOR_TEMPLATES = ("{actor}", "a photo of {actor}", "a picture of {actor}")
DEFAULT_UNITS = (2, 5)  # parts a free pose moves: the held-out actions' 3-5 lie inside, so they occur unnamed


def unit_prompt(actor: str, view: str, units, template: int = 0) -> str:
    """The caption of ``actor`` in the composed pose: a caption template with the units' phrases as the action."""
    return CAPTION_TEMPLATES[template].format(actor=get_actor(actor).caption, action=describe(view, units))


def free_action(view: str, units) -> Action:
    """A composed pose as an (unnamed) action, for :func:`stickworld.render.render`."""
    return Action("free", describe(view, units), compose(view, units), split="free")


def parse_units_schedule(text: str) -> tuple[tuple[int, int, int], ...]:
    """A ``--max-units-schedule`` as ((first step, low, high), ...), sorted by step.

    Args:
        text: Comma-separated ``step:high`` or ``step:low-high`` entries, the first at step 0: from that step on a
            free pose moves ``low``..``high`` parts. ``high`` alone means "at most ``high``", from
            ``min(2, high)``, the grammar's own lower end. ``"0:2,3000:5"``: exactly 2 parts until step 3000, then
            2-5; ``"0:1-2,3000:2-5"``: 1-2 parts first.
    """
    entries = []
    for part in text.split(","):
        try:
            step, count = part.split(":")
            low, high = count.split("-") if "-" in count else (min(DEFAULT_UNITS[0], int(count)), count)
            entries.append((int(step), int(low), int(high)))
        except ValueError:
            raise ValueError(f"--max-units-schedule entry {part!r} is not step:high or step:low-high "
                             "(e.g. \"0:1-2,3000:2-5\")") from None
    steps = [e[0] for e in entries]
    if steps[0] != 0 or steps != sorted(set(steps)):
        raise ValueError(f"--max-units-schedule {text!r}: the first entry must be at step 0 and steps must increase")
    for step, low, high in entries:
        if not 1 <= low <= high <= len(PARTS):
            raise ValueError(f"--max-units-schedule {text!r}: at step {step}, need 1 <= low <= high <= {len(PARTS)}")
    return tuple(entries)


def units_at(schedule: tuple[tuple[int, int, int], ...], step: int) -> tuple[int, int]:
    """The (low, high) parts a free pose moves at ``step``: a function of the step alone, so resume stays exact."""
    low, high = DEFAULT_UNITS
    for first, lo, hi in schedule:
        if step >= first:
            low, high = lo, hi
    return low, high


def sample(rng: np.random.Generator, size: int = 64, units: tuple[int, int] = DEFAULT_UNITS) -> dict:
    """One pretraining example: ``image``, ``caption``, ``actor``, ``kind`` (name / units / actor), ``action`` (the
    known action's name, or ``free``), ``pose`` (the drawn :class:`Pose` before jitter), ``scene`` and ``joints``.

    Args:
        units: How many parts (low, high) a free pose moves.
    """
    actor = list(ACTORS)[int(rng.integers(len(ACTORS)))]
    kind = str(rng.choice(list(MIX), p=list(MIX.values())))
    if kind == "actor":  # the pose is whatever it is: a known action or a free pose, half each
        kind_of_pose = "name" if rng.random() < 0.5 else "units"
    else:
        kind_of_pose = kind
    template = int(rng.integers(len(CAPTION_TEMPLATES)))
    if kind_of_pose == "name":
        action = ACTIONS[list(KNOWN_ACTIONS)[int(rng.integers(len(KNOWN_ACTIONS)))]]
        text = CAPTION_TEMPLATES[template].format(actor=get_actor(actor).caption, action=action.phrase)
    else:
        view, chosen = random_units(rng, *units)
        action = free_action(view, chosen)
        text = unit_prompt(actor, view, chosen, template)
    if kind == "actor":
        text = ACTOR_TEMPLATES[int(rng.integers(len(ACTOR_TEMPLATES)))].format(actor=get_actor(actor).caption)
    scene = SCENES[int(rng.integers(len(SCENES)))].name
    if rng.random() < SCENE_SHARE:
        text = f"{text} {SCENE_PHRASES[scene]}"
    image, joints = render(actor, action, size, rng, scene=scene)
    return dict(image=image, caption=text, actor=actor, actor_id=ACTOR_IDS[actor], kind=kind, action=action.name,
                pose=action.pose, scene=scene, joints=joints)
