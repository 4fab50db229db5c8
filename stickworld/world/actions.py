"""Actions of StickWorld: named poses with the phrase a caption uses for them.

``KNOWN_ACTIONS`` appear in pretraining captions; ``HELDOUT_ACTIONS`` never do: they are what a customization method
has to learn from a few exemplars. Angles follow :class:`stickworld.world.skeleton.Pose` (degrees; positive swings
a limb outward from the front, forward from the side). A held-out action may share a body part's configuration with
known ones (the three-point landing has a lunge's legs) but never the whole pose or the phrase.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from stickworld.world.skeleton import Pose
from stickworld.world.units import compose, describe
from twinact.paths import package_path

HELDOUT_FILE = package_path("pkg://stickworld/heldout_actions.json")
SPLITS = ("dev", "test")


@dataclasses.dataclass(frozen=True)
class Action:
    """A named pose and how captions say it ("kicking with the right leg").

    Attributes:
        split: ``known`` (named in pretraining), or for held-out actions ``dev`` / ``test``.
        units: The pose's description in the pose grammar (held-out actions), empty when it has none.
    """

    name: str
    phrase: str
    pose: Pose
    split: str = "known"
    units: tuple[str, ...] = ()


F = functools.partial(Pose, "front")
S = functools.partial(Pose, "side")
_ARMS_DOWN = dict(left_shoulder=6, right_shoulder=10)


def _table(*rows: tuple[str, str, Pose]) -> dict[str, Action]:
    return {name: Action(name, phrase, pose) for name, phrase, pose in rows}


KNOWN_ACTIONS = _table(
    ("standing", "standing", F()),
    ("raising_both_arms", "raising both arms", F(left_shoulder=165, right_shoulder=165)),
    ("raising_right_arm", "raising the right arm", F(right_shoulder=170)),
    ("raising_left_arm", "raising the left arm", F(left_shoulder=170)),
    ("waving_right_hand", "waving the right hand", F(right_shoulder=100, right_elbow=65)),
    ("waving_left_hand", "waving the left hand", F(left_shoulder=100, left_elbow=65)),
    ("arms_out", "stretching both arms out to the sides", F(left_shoulder=90, right_shoulder=90)),
    ("hands_on_hips", "standing with hands on hips",
     F(left_shoulder=50, left_elbow=-120, right_shoulder=50, right_elbow=-120, left_hip=8, right_hip=8)),
    ("flexing", "flexing both biceps", F(left_shoulder=95, left_elbow=95, right_shoulder=95, right_elbow=95)),
    ("jumping_jack", "doing a jumping jack", F(left_shoulder=140, left_elbow=10, right_shoulder=140, right_elbow=10,
                                               left_hip=28, right_hip=28, lift=0.04)),
    ("squatting", "squatting", S(lean=30, left_shoulder=115, right_shoulder=115, left_hip=100, left_knee=130,
                                 right_hip=95, right_knee=125)),
    ("sitting", "sitting on the ground", S(lean=-5, left_shoulder=-45, left_elbow=10, right_shoulder=-45,
                                           right_elbow=10, left_hip=88, left_knee=5, right_hip=92, right_knee=0)),
    ("cross_legged", "sitting cross-legged", F(left_shoulder=45, left_elbow=-15, right_shoulder=45, right_elbow=-15,
                                               left_hip=75, left_knee=160, right_hip=75, right_knee=160)),
    ("kneeling", "kneeling", S(left_shoulder=5, right_shoulder=15, left_hip=0, left_knee=90, right_hip=0,
                               right_knee=90)),
    ("kicking_right", "kicking with the right leg", S(lean=-12, left_shoulder=-30, right_shoulder=50, right_elbow=20,
                                                      left_hip=-5, left_knee=5, right_hip=95, right_knee=5)),
    ("kicking_left", "kicking with the left leg", F(lean=-20, left_shoulder=60, right_shoulder=60, left_hip=80,
                                                    left_knee=5, right_hip=8)),
    ("running", "running", S(lean=15, left_shoulder=50, left_elbow=85, right_shoulder=-45, right_elbow=95,
                             left_hip=-30, left_knee=95, right_hip=65, right_knee=80, lift=0.03)),
    ("walking", "walking", S(lean=3, left_shoulder=22, left_elbow=25, right_shoulder=-22, right_elbow=20,
                             left_hip=-18, left_knee=18, right_hip=22, right_knee=8)),
    ("jumping", "jumping in the air", S(lean=5, left_shoulder=160, right_shoulder=165, left_hip=70, left_knee=110,
                                        right_hip=75, right_knee=115, lift=0.18)),
    ("bowing", "bowing", S(lean=70, neck=10, left_shoulder=5, right_shoulder=5, left_hip=0, right_hip=0)),
    ("touching_toes", "touching the toes", S(lean=110, neck=10, left_shoulder=110, right_shoulder=110,
                                             left_hip=-6, right_hip=-3)),
    ("lying_on_back", "lying on the back", S(lean=-90, left_shoulder=0, right_shoulder=5, left_hip=90,
                                             right_hip=88)),
    ("push_up", "doing a push-up", S(lean=59, neck=-15, left_shoulder=59, right_shoulder=59, left_hip=-121,
                                     right_hip=-121)),
    ("crawling", "crawling on hands and knees", S(lean=65, neck=-30, left_shoulder=55, right_shoulder=75,
                                                  left_hip=-5, left_knee=85, right_hip=5, right_knee=95)),
    ("praying", "praying with hands together", F(neck=8, left_shoulder=10, left_elbow=-150, right_shoulder=10,
                                                 right_elbow=-150)),
    ("clapping_overhead", "clapping hands above the head", F(left_shoulder=170, left_elbow=40, right_shoulder=170,
                                                             right_elbow=40)),
    ("pointing_forward", "pointing forward", S(left_shoulder=5, right_shoulder=88)),
    ("pointing_up", "pointing at the sky", S(neck=-25, left_shoulder=0, right_shoulder=150)),
    ("saluting", "saluting", F(right_shoulder=123, right_elbow=125)),
    ("hands_on_head", "holding both hands on the head", F(left_shoulder=140, left_elbow=115, right_shoulder=140,
                                                          right_elbow=115)),
    ("one_leg", "balancing on one leg", F(left_shoulder=90, right_shoulder=90, left_hip=65, left_knee=140)),
    ("leaning_left", "leaning to the left", F(lean=28, left_shoulder=15, right_shoulder=150)),
    ("leaning_right", "leaning to the right", F(lean=-28, left_shoulder=150, right_shoulder=15)),
    ("crossing_arms", "crossing the arms", F(left_shoulder=15, left_elbow=-105, right_shoulder=15,
                                             right_elbow=-105)),
    ("shrugging", "shrugging", F(neck=12, left_shoulder=30, left_elbow=65, right_shoulder=30, right_elbow=65)),
    ("punching", "throwing a punch", S(lean=10, left_shoulder=55, left_elbow=110, right_shoulder=100,
                                       left_hip=-25, left_knee=10, right_hip=25, right_knee=10)),
    ("lunging", "doing a lunge", S(**_ARMS_DOWN, left_hip=-10, left_knee=80, right_hip=85, right_knee=85)),
    ("handstand", "doing a handstand", F(lean=180, left_shoulder=175, right_shoulder=175, left_hip=188,
                                         right_hip=188)),
    ("dancing", "dancing", F(lean=8, left_shoulder=40, left_elbow=-120, right_shoulder=150, left_hip=20,
                             left_knee=10)),
    ("lying_on_stomach", "lying on the stomach", S(lean=90, neck=-35, left_shoulder=170, right_shoulder=175,
                                                   left_hip=-90, left_knee=20, right_hip=-88)),
    ("throwing", "throwing a ball", S(lean=-12, left_shoulder=80, right_shoulder=-150, right_elbow=-40,
                                      left_hip=-30, left_knee=15, right_hip=30, right_knee=10)),
    ("splits", "doing the splits", F(left_shoulder=155, right_shoulder=155, left_hip=90, right_hip=90)),
    ("scratching_head", "scratching the head", F(neck=10, left_shoulder=50, left_elbow=-120, right_shoulder=165,
                                                 right_elbow=120)),
    ("zombie_walk", "walking like a zombie", S(lean=5, neck=15, left_shoulder=95, right_shoulder=95, left_hip=-12,
                                               left_knee=10, right_hip=15, right_knee=5)),
    ("hopping", "hopping on one leg", S(lean=8, left_shoulder=40, right_shoulder=-30, right_elbow=60, left_hip=-5,
                                        left_knee=110, right_hip=5, right_knee=5, lift=0.1)),
    ("hugging_knees", "hugging the knees", S(lean=10, neck=15, left_shoulder=50, left_elbow=-30, right_shoulder=45,
                                             right_elbow=-25, left_hip=125, left_knee=150, right_hip=120,
                                             right_knee=150)),
    ("raising_right_knee", "raising the right knee", S(left_shoulder=-25, right_shoulder=30, left_hip=0,
                                                       right_hip=95, right_knee=100)),
)

def load_heldout(path: str | Path = HELDOUT_FILE) -> dict[str, Action]:
    """Held-out actions from a JSON list of ``{name, phrase, split, pose, units, description}`` entries.

    ``pose`` holds :class:`Pose` fields (joint angles in degrees, view, lift); ``split`` is ``dev`` (for tuning
    anything) or ``test`` (only ever reported); ``units`` (optional) is the pose's description in the pose grammar
    (:mod:`stickworld.world.units`), used to check that the base model can render it. Adding an entry adds an action.
    """
    entries = json.loads(Path(path).read_text())
    out = {}
    for e in entries:
        if e.get("split") not in SPLITS:
            raise ValueError(f"{path}: held-out action {e.get('name')!r} needs split: one of {SPLITS}")
        if e["name"] in KNOWN_ACTIONS or e["name"] in out:
            raise ValueError(f"{path}: held-out action name {e['name']!r} is already taken")
        out[e["name"]] = Action(e["name"], e["phrase"], Pose(**e["pose"]), e["split"], tuple(e.get("units", ())))
    return out


HELDOUT_ACTIONS = load_heldout()
DEV_ACTIONS = tuple(name for name, a in HELDOUT_ACTIONS.items() if a.split == "dev")
TEST_ACTIONS = tuple(name for name, a in HELDOUT_ACTIONS.items() if a.split == "test")

ACTIONS: dict[str, Action] = {**KNOWN_ACTIONS, **HELDOUT_ACTIONS}


def free_action(view: str, units) -> Action:
    """A composed pose of the grammar as an (unnamed) action, to draw (:func:`stickworld.world.drawing.draw`)."""
    return Action("free", describe(view, units), compose(view, units), split="free")


def add_heldout(path: str | Path) -> dict[str, Action]:
    """Held-out actions from a user's file (the format of :func:`load_heldout`), added to :data:`HELDOUT_ACTIONS` and
    :data:`ACTIONS`; returns the file's actions in its order.

    Scoring, the action encoder and the exemplar drawing look actions up by name deep inside a training run (the
    scorer is built by Hydra), so a file is registered once here rather than threaded through every call. An entry
    that repeats a shipped held-out action exactly is allowed; one that redefines it is refused.
    """
    added = load_heldout(path)
    for name, action in added.items():
        if name in HELDOUT_ACTIONS and HELDOUT_ACTIONS[name] != action:
            raise ValueError(f"{path}: held-out action {name!r} is already shipped with another definition; rename it")
    HELDOUT_ACTIONS.update(added)
    ACTIONS.update(added)
    return added


def get_action(action: str | Action) -> Action:
    """The action called ``action`` (or ``action`` itself)."""
    if isinstance(action, Action):
        return action
    try:
        return ACTIONS[action]
    except KeyError:
        raise KeyError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}") from None
