"""The pretraining distribution of the StickWorld base model 2: known actions by name, free poses by their units,
actors alone, and scenes named.

Each example is a random actor in a random scene doing either a known action (:mod:`stickworld.actions`) or a free
pose of the grammar (:mod:`stickworld.units`); its caption says one of:

- the known action's phrase ("a robot doing a lunge");
- the free pose's unit phrases ("a fox leaning far forward, left arm swept back, seen from the side");
- the actor only ("a photo of a penguin"), whatever it is doing;

and, for a share of them, the scene ("... on a beach"). Held-out actions are never named; their poses occur among
the free poses at the grammar's own frequency, unnamed, as a pose a real model has seen but cannot name.
"""

from __future__ import annotations

import numpy as np

from stickworld.actions import ACTIONS, KNOWN_ACTIONS, Action
from stickworld.actors import ACTORS, get_actor
from stickworld.render import ACTOR_IDS, CAPTION_TEMPLATES, render
from stickworld.scenes import SCENES
from stickworld.units import compose, describe, random_units

# Shares of the caption kinds (known by name, free pose by units, actor only); the rest is empty (classifier-free
# guidance), set by the trainer.
MIX = {"name": 0.45, "units": 0.45, "actor": 0.10}
SCENE_SHARE = 0.2  # captions that also name the backdrop
SCENE_PHRASES = {"meadow": "in a meadow", "beach": "on a beach", "snow": "in the snow", "night": "at night",
                 "sunset": "at sunset", "studio": "in a studio", "room": "in a room", "desert": "in the desert"}
ACTOR_TEMPLATES = ("{actor}", "a photo of {actor}", "a picture of {actor}")


def unit_prompt(actor: str, view: str, units, template: int = 0) -> str:
    """The caption of ``actor`` in the composed pose: a caption template with the units' phrases as the action."""
    return CAPTION_TEMPLATES[template].format(actor=get_actor(actor).caption, action=describe(view, units))


def free_action(view: str, units) -> Action:
    """A composed pose as an (unnamed) action, for :func:`stickworld.render.render`."""
    return Action("free", describe(view, units), compose(view, units), split="free")


def sample(rng: np.random.Generator, size: int = 64) -> dict:
    """One pretraining example: ``image``, ``caption``, ``actor``, ``kind`` (name / units / actor), ``action`` (the
    known action's name, or ``free``), ``pose`` (the drawn :class:`Pose` before jitter), ``scene`` and ``joints``."""
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
        view, units = random_units(rng)
        action = free_action(view, units)
        text = unit_prompt(actor, view, units, template)
    if kind == "actor":
        text = ACTOR_TEMPLATES[int(rng.integers(len(ACTOR_TEMPLATES)))].format(actor=get_actor(actor).caption)
    scene = SCENES[int(rng.integers(len(SCENES)))].name
    if rng.random() < SCENE_SHARE:
        text = f"{text} {SCENE_PHRASES[scene]}"
    image, joints = render(actor, action, size, rng, scene=scene)
    return dict(image=image, caption=text, actor=actor, actor_id=ACTOR_IDS[actor], kind=kind, action=action.name,
                pose=action.pose, scene=scene, joints=joints)
