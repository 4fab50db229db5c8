"""The StickWorld phrase list: the common action space's phrases for the StickWorld base model.

Every phrase the base model was taught in pretraining (:mod:`stickworld.pretraining.mixture`): each known action's
phrase ("doing a lunge") and each unit phrase of the pose grammar ("left arm raised", :mod:`stickworld.world.units`),
grouped by body part as the paper groups its phrases (:data:`twinact.space.action_space.GROUPS`):

- ``head``: the head units, and known actions whose phrase names the head (:data:`_GROUP_WORDS`);
- ``hand``: the arm units, and known actions of the arms and hands;
- ``foot``: the leg units, and known actions of the legs and feet;
- ``whole_body``: the torso and height units, and every other known action.

A phrase that is both (the known action "leaning to the left" is also a torso unit) is listed once, at its known
action. Held-out phrases are never listed.
``python -m stickworld.protocol.phrases --out stickworld/data/action_phrases.tsv`` writes the list (a test keeps the
shipped file equal to :func:`phrase_list`).

The paper keeps only phrases its base model already renders; :func:`filter_renderable` (``--filter-with <model>``)
is that filter for StickWorld: render each phrase, read the pose back with the judges, keep it when the pose rendered
is its own. Write a filtered list to a file of its own (``action_space.phrases=<file>``), not over the shipped one.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from stickworld.networks import judges
from stickworld.world.actions import KNOWN_ACTIONS
from stickworld.world.actors import get_actor
from stickworld.world.skeleton import JOINTS, Pose, forward_kinematics, normalize
from stickworld.world.units import UNITS, VIEW_PHRASE, Unit, compose
from twinact.model.models import load_base_model
from twinact.release.sampling import make_pipeline

# Body part of a pose-grammar unit -> body-part group of the common action space.
PART_GROUPS = {"head": "head", "left_arm": "hand", "right_arm": "hand", "left_leg": "foot", "right_leg": "foot",
               "torso": "whole_body", "height": "whole_body"}
# Word -> body-part group of a known action's phrase (first match wins; no match: whole_body).
_GROUP_WORDS = (("head", ("head", "shrugging", "bowing")), ("foot", ("leg", "knee", "kick", "toes", "hopping")),
                ("hand", ("arm", "hand", "biceps", "pointing", "saluting", "clapping", "punch", "praying", "ball")))
DEFAULT_ACTORS = ("robot", "red_haired_woman", "polar_bear")  # a machine, a person, an animal


def action_group(phrase: str) -> str:
    """The body-part group of a known action's phrase, by the words it contains."""
    return next((g for g, words in _GROUP_WORDS if any(w in phrase for w in words)), "whole_body")


def known_phrases() -> list[tuple[str, str]]:
    """(group, phrase) of every known action, in :data:`KNOWN_ACTIONS` order."""
    return [(action_group(a.phrase), a.phrase) for a in KNOWN_ACTIONS.values()]


def unit_phrases() -> list[tuple[str, str]]:
    """(group, phrase) of every unit of the pose grammar, in :data:`UNITS` order."""
    return [(PART_GROUPS[u.part], u.phrase) for u in UNITS]


def phrase_list() -> list[tuple[str, str]]:
    """(group, phrase) of every known action and every grammar unit, each phrase once (known actions first)."""
    out: dict[str, str] = {}
    for group, phrase in known_phrases() + unit_phrases():
        out.setdefault(phrase, group)
    return [(g, p) for p, g in out.items()]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A phrase with the poses its images should show: ``prompts`` are (view or None, action text) to render."""
    phrase: str
    targets: tuple  # Pose per view it can be shown in
    prompts: tuple[tuple[str | None, str], ...]


def candidate(phrase: str) -> Candidate:
    """The target pose(s) and prompt(s) of a phrase: a known action's target is its pose; a unit's is the rest pose
    with that unit set, in each view it is valid in, prompted as pretraining captions it (side view: "..., seen from
    the side")."""
    for a in KNOWN_ACTIONS.values():
        if a.phrase == phrase:
            return Candidate(phrase, (a.pose,), ((None, phrase),))
    units: list[Unit] = [u for u in UNITS if u.phrase == phrase]
    if not units:
        raise ValueError(f"{phrase!r} is neither a known action's phrase nor a unit phrase of the pose grammar")
    u = units[0]
    prompts = tuple((v, ", ".join(p for p in (phrase, VIEW_PHRASE[v]) if p)) for v in u.views)
    return Candidate(phrase, tuple(compose(v, [u]) for v in u.views), prompts)


def _normalised(pose, actor: str) -> np.ndarray:

    return normalize(forward_kinematics(pose, get_actor(actor).build) * [1.0, -1.0])


def _mirror() -> list[int]:
    """JOINTS index of each joint's left/right counterpart."""
    other = {"left": "right", "right": "left"}
    return [JOINTS.index("_".join([other.get(w, w) for w in n.split("_")])) for n in JOINTS]


def _distance(joints: np.ndarray, poses, actor: str) -> float:
    """Smallest RMS distance of one normalised judged pose [14, 2] to any of ``poses`` on ``actor``'s body.

    Side views are compared with left and right either way round: there the judges read the far limbs as the
    near ones (a clean drawing of "left arm raised, seen from the side" reads as the right arm raised).
    """
    out = []
    for p in poses:
        ref = _normalised(p, actor)
        views = (joints, joints[_mirror()]) if p.view == "side" else (joints,)
        out += [float(np.sqrt(((j - ref) ** 2).sum(-1).mean())) for j in views]
    return min(out)


def filter_renderable(phrases: Sequence, model_dir: str, *, actors: Sequence[str] = DEFAULT_ACTORS,
                      seeds: int = 2, steps: int = 25, guidance_scale: float = 5.0, tie: float = 0.05,
                      min_hit_rate: float = 0.5, min_separation: float = 0.1, judge=None, batch_size: int = 32,
                      device: str | None = None) -> tuple[list, dict[str, dict]]:
    """Keep the phrases the base model in ``model_dir`` renders (the paper's "keep what the model can draw").

    Each phrase is rendered as "<actor caption> <phrase>" (units in each view they are valid in, side view with
    ", seen from the side" as pretraining captions say it) for every actor in ``actors`` and ``seeds`` seeds, and
    the judges (:func:`stickworld.networks.judges.predict`) read each image's pose. Poses are compared as in
    :mod:`stickworld.protocol.scoring`: normalised joints (centred, unit RMS radius), RMS distance, on the actor's body;
    side-view targets left/right either way round (the judges swap a side view's far and near limbs).

    Criterion: an image is a *hit* when its pose is nearer the phrase's own target (min over the target's views)
    than the rest pose (front or side, whichever is nearer), and no farther than ``tie`` (RMS-radius units; the
    scoring kappa is 0.15) from being the nearest of every candidate's target, so that two phrases with almost
    the same pose ("raising the left arm", "left arm raised") do not knock each other out. A phrase is kept when
    at least ``min_hit_rate`` of its images are hits. A phrase whose target lies within ``min_separation`` of the
    rest pose cannot be told from rest by its pose ("standing"; "in the air": normalising removes the lift;
    "head bowed": 0.045, below the judges' error on clean drawings): for it the rest test is skipped and only the
    nearest-candidate test applies (``rest_test`` False in the report).

    Args:
        phrases: phrases, or (group, phrase) pairs (what :func:`phrase_list` returns); the kept ones come back in
            the same form and order. The other candidates are these same phrases.
        model_dir: the base model (a diffusers folder).
        judge: a loaded :class:`stickworld.networks.judges.Judge`; None loads the shipped one.

    Returns:
        (kept phrases, per phrase {"hit_rate", "own", "rest", "nearest_other", "images", "separation",
        "rest_test"}: mean distances to its target, the rest pose and the nearest other candidate; its target's
        distance from rest; whether the rest test applied).
    """
    texts = [p[1] if isinstance(p, (tuple, list)) else p for p in phrases]
    if len(set(texts)) != len(texts):
        raise ValueError("filter_renderable: each phrase once, please")
    cands = [candidate(t) for t in texts]
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe = make_pipeline(load_base_model(str(model_dir))).to(device)
    pipe.set_progress_bar_config(disable=True)
    jobs = [(i, actor, seed, f"{get_actor(actor).caption} {text}")
            for i, c in enumerate(cands) for _, text in c.prompts for actor in actors for seed in range(seeds)]
    images = []
    with torch.no_grad():
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            images += pipe([j[3] for j in chunk], num_inference_steps=steps, guidance_scale=guidance_scale,
                           height=64, width=64,
                           generator=[torch.Generator().manual_seed(1000 * j[0] + j[2]) for j in chunk]).images
    joints, _ = judges.predict(images, judge)
    rest = (Pose("front"), Pose("side"))
    separation = [min(_distance(_normalised(t, a), rest, a) for t in c.targets for a in actors) for c in cands]
    records: dict[str, dict] = {c.phrase: {"hits": [], "own": [], "rest": [], "nearest_other": []} for c in cands}
    for (i, actor, _, _), pose in zip(jobs, normalize(joints)):
        own = _distance(pose, cands[i].targets, actor)
        at_rest = _distance(pose, rest, actor)
        others = [_distance(pose, c.targets, actor) for k, c in enumerate(cands) if k != i]
        other = min(others) if others else float("inf")
        r = records[cands[i].phrase]
        r["hits"].append((own < at_rest or separation[i] < min_separation) and own <= other + tie)
        r["own"].append(own)
        r["rest"].append(at_rest)
        r["nearest_other"].append(other)
    report = {p: {"hit_rate": float(np.mean(r["hits"])), "own": float(np.mean(r["own"])),
                  "rest": float(np.mean(r["rest"])), "nearest_other": float(np.mean(r["nearest_other"])),
                  "images": len(r["hits"]), "separation": sep, "rest_test": sep >= min_separation}
              for (p, r), sep in zip(records.items(), separation)}
    kept = [p for p, t in zip(phrases, texts) if report[t]["hit_rate"] >= min_hit_rate]
    return kept, report


def write_tsv(pairs: Sequence[tuple[str, str]], path: Path) -> None:
    """Write ``group<TAB>phrase`` lines (what :func:`twinact.space.action_space.load_phrases` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{g}\t{p}\n" for g, p in pairs), encoding="utf-8")


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="group<TAB>phrase file to write")
    p.add_argument("--filter-with", metavar="MODEL_DIR", default=None,
                   help="keep only the phrases this base model renders (filter_renderable); write the result to a file "
                        "of its own, not over the shipped stickworld/data/action_phrases.tsv")
    p.add_argument("--actors", nargs="+", default=list(DEFAULT_ACTORS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance-scale", type=float, default=5.0)
    p.add_argument("--min-hit-rate", type=float, default=0.5)
    args = p.parse_args(argv)
    pairs = phrase_list()
    if args.filter_with:
        pairs, report = filter_renderable(pairs, args.filter_with, actors=args.actors, seeds=args.seeds,
                                          steps=args.steps, guidance_scale=args.guidance_scale,
                                          min_hit_rate=args.min_hit_rate)
        dropped = [k for k, v in report.items() if v["hit_rate"] < args.min_hit_rate]
        print(f"kept {len(pairs)} of {len(report)} phrases; dropped: {dropped}")
    write_tsv(pairs, args.out)
    print(f"wrote {len(pairs)} phrases to {args.out}")
    return pairs


if __name__ == "__main__":
    main()
