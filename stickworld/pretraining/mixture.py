"""The pretraining distribution of the StickWorld base model: every pose it must render, and names for only some.

Each example is a random actor in a random scene, drawn in one of three kinds of pose:

- a **known** action (:mod:`stickworld.world.actions`), captioned by its phrase ("a robot doing a lunge");
- a **held-out** action's pose, as often as each known action, captioned by its pose-grammar description ("a fox
  leaning far forward, left arm swept back, ..., seen from the side") and never by its name: the base model can
  render it, as real SD has seen countless poses it cannot name, but a customization method must teach it the name;
- a **free** pose of the grammar (:mod:`stickworld.world.units`), captioned by its units, so the unit phrases a held-out
  description uses are also seen in other combinations, beside the known actions' names in one embedding table.

A share of captions name the actor alone ("a photo of a penguin"), whatever the pose, and a share name the scene
("... on a beach"). How many parts a free pose moves can follow a curriculum over the training steps
(:func:`units_at`), and so can the share of canonical takes (:func:`canonical_share`).
"""

from __future__ import annotations

import numpy as np

from stickworld.world.actions import HELDOUT_ACTIONS, KNOWN_ACTIONS, Action, free_action
from stickworld.world.actors import ACTORS, get_actor
from stickworld.world.captions import ACTOR_TEMPLATES, SCENE_PHRASES, unit_prompt
from stickworld.world.drawing import ACTOR_IDS, CAPTION_TEMPLATES, draw
from stickworld.world.scenes import SCENES
from stickworld.world.units import PARTS, random_units

# Shares of the poses drawn: free poses, and the rest spread evenly over the known and held-out actions, so each
# held-out pose is seen as often as each known action. Free poses teach the unit phrases in other combinations; the
# known actions get most of the images because their names are what the action space is built from.
FREE_SHARE = 0.2
ACTOR_ONLY_SHARE = 0.12  # captions that name the actor alone, whatever the pose (the empty ones are the trainer's)
SCENE_SHARE = 0.2  # captions that also name the backdrop
DEFAULT_UNITS = (2, 5)  # parts a free pose moves: the held-out actions' 3-5 lie inside, so they occur unnamed


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


def canonical_share(step: int, ramp: int, floor: float) -> float:
    """Share of canonical takes (the pose unjittered, centred, at the usual size) at ``step``: all of them at first,
    down to ``floor`` at step ``ramp``. A network that must find a pose among jitter, shifts and sizes learns it far
    later than one shown the pose in one place first (the StickWorld CLIP's pose classifier: chance for 400 steps on
    random takes, learnt in 150 on canonical ones)."""
    return max(floor, 1.0 - step / ramp) if ramp else floor


def named_actions() -> list[Action]:
    """The named poses of the mixture, known and held-out: one each per pick of a named pose."""
    return list(KNOWN_ACTIONS.values()) + list(HELDOUT_ACTIONS.values())


def sample(rng: np.random.Generator, size: int = 64, units: tuple[int, int] = DEFAULT_UNITS,
           canonical: float | None = None) -> dict:
    """One pretraining example: ``image``, ``caption``, ``actor``, ``pose_kind`` (known / heldout / free),
    ``caption_kind`` (name / units / actor), ``action`` (the action's name, or ``free``), ``pose`` (the drawn
    :class:`Pose` before jitter), ``scene`` and ``joints``.

    Args:
        units: How many parts (low, high) a free pose moves.
        canonical: Probability that the pose is drawn as a canonical take (:func:`canonical_share`); ``None``
            tosses no such coin, so the mixture's random stream is the one it always was.
    """
    actor = list(ACTORS)[int(rng.integers(len(ACTORS)))]
    template = int(rng.integers(len(CAPTION_TEMPLATES)))
    if rng.random() < FREE_SHARE:
        view, chosen = random_units(rng, *units)
        action, pose_kind = free_action(view, chosen), "free"
    else:
        named = named_actions()
        action = named[int(rng.integers(len(named)))]
        pose_kind = "known" if action.split == "known" else "heldout"
    if pose_kind == "known":
        caption_kind = "name"
        text = CAPTION_TEMPLATES[template].format(actor=get_actor(actor).caption, action=action.phrase)
    else:
        caption_kind = "units"
        view, chosen = (action.pose.view, action.units) if pose_kind == "heldout" else (view, chosen)
        text = unit_prompt(actor, view, chosen, template)
    if rng.random() < ACTOR_ONLY_SHARE:
        caption_kind = "actor"
        text = ACTOR_TEMPLATES[int(rng.integers(len(ACTOR_TEMPLATES)))].format(actor=get_actor(actor).caption)
    scene = SCENES[int(rng.integers(len(SCENES)))].name
    if rng.random() < SCENE_SHARE:
        text = f"{text} {SCENE_PHRASES[scene]}"
    plain = canonical is not None and rng.random() < canonical
    image, joints = draw(actor, action, size, None if plain else rng, scene=scene)
    return dict(image=image, caption=text, actor=actor, actor_id=ACTOR_IDS[actor], pose_kind=pose_kind,
                caption_kind=caption_kind, action=action.name, pose=action.pose, scene=scene, joints=joints)
