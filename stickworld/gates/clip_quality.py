"""The StickWorld CLIP's gates: does it tell actors apart, name every action, and see the pose before the actor?

``python -m stickworld.gates.clip_quality --model stickworld/data/clip`` draws every actor doing every action (known
and held-out), ``--per-pair`` random takes each in random scenes, from seeds training never uses (two-word seeds
``[--seed, i]``; training's are three words), and writes ``quality.json`` into the model folder:

- ``retrieval.actor_top1``: the image's nearest actor prompt ("a photo of a fox", :data:`ACTOR_PROMPT`) among all
  18 is its actor's;
- ``retrieval.action_top1``: its nearest action prompt ("a photo of someone doing a backflip") among all 57 is its
  action's (also split into ``_known`` and ``_heldout``, and ``action_top1_given_actor``, the prompts naming the
  image's own actor);
- ``margin``: mean cosine between image embeddings of the same action by other actors, minus that of the same
  actor doing other actions: positive when the embedding is more about the pose than about who strikes it, which is
  what comparing a generation with exemplars of another actor needs. ``margin_pooled`` is the same on the vision
  tower's pooled output, the feature twinact's `ClipImageEncoder` reads.

The gates (:data:`GATES`) and whether each passed are recorded beside them, with the machine, the wall time and the
command.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stickworld.networks import clip_model
from stickworld.networks.clip_model import ACTION_PROMPT, ACTOR_PROMPT
from stickworld.world.actions import ACTIONS, HELDOUT_ACTIONS
from stickworld.world.actors import ACTORS, get_actor
from stickworld.world.drawing import draw

GATES = {"retrieval.actor_top1": (">=", 0.9), "retrieval.action_top1": (">=", 0.7), "margin": (">", 0.0)}
EVAL_SEED = 1_000_003
KEYS = ("retrieval", "margin", "margin_pooled", "cosines", "gates", "passed", "eval", "machine", "wall_seconds",
        "command", "date")  # what a quality.json holds (tests check the committed one against it)


def eval_set(seed: int = EVAL_SEED, per_pair: int = 1, actors=None, actions=None) -> list[dict]:
    """Every (actor, action) pair ``per_pair`` times: ``image``, ``actor``, ``action``; pair k's take i is drawn
    from ``[seed, k * per_pair + i]``, so a subset draws the same images as the full set does."""
    actors, actions = list(actors or ACTORS), list(actions or ACTIONS)
    unknown = sorted(set(actors) - set(ACTORS)) + sorted(set(actions) - set(ACTIONS))
    if unknown:
        raise SystemExit(f"unknown actors or actions: {', '.join(unknown)} (see stickworld/README.md for the names)")
    out = []
    for a in ACTORS:
        for b in ACTIONS:
            k = list(ACTORS).index(a) * len(ACTIONS) + list(ACTIONS).index(b)
            if a not in actors or b not in actions:
                continue
            for i in range(per_pair):
                image, _ = draw(a, b, clip_model.IMAGE_SIZE, np.random.default_rng([seed, k * per_pair + i]))
                out.append(dict(image=image, actor=a, action=b))
    return out


def top1(image: torch.Tensor, text: torch.Tensor, truth: torch.Tensor) -> float:
    """Share of images whose most similar text (rows of ``text``) is the one ``truth`` indexes."""
    return float((image @ text.T).argmax(1).eq(truth).float().mean())


def pair_means(emb: torch.Tensor, actor: torch.Tensor, action: torch.Tensor) -> dict[str, float]:
    """Mean cosine over pairs of distinct images with the same action and other actors, and vice versa."""
    emb = clip_model.normalize(emb)
    cos = emb @ emb.T
    same_actor, same_action = actor[:, None] == actor[None, :], action[:, None] == action[None, :]
    return {"same_action_other_actor": float(cos[same_action & ~same_actor].mean()),
            "same_actor_other_action": float(cos[same_actor & ~same_action].mean())}


def measure(model, tok, samples: list[dict]) -> dict:
    """The metrics of :mod:`stickworld.gates.clip_quality` (no gates) of ``model`` on ``samples``."""
    actors = sorted({s["actor"] for s in samples}, key=list(ACTORS).index)
    actions = sorted({s["action"] for s in samples}, key=list(ACTIONS).index)
    actor = torch.tensor([actors.index(s["actor"]) for s in samples])
    action = torch.tensor([actions.index(s["action"]) for s in samples])
    joint, pooled = clip_model.embed_images(model, [s["image"] for s in samples])
    actor_text = clip_model.embed_texts(model, tok, [ACTOR_PROMPT.format(actor=get_actor(a).caption) for a in actors])
    action_text = clip_model.embed_texts(model, tok, [ACTION_PROMPT.format(action=ACTIONS[b].phrase) for b in actions])
    heldout = torch.tensor([s["action"] in HELDOUT_ACTIONS for s in samples])
    hits = (joint @ action_text.T).argmax(1).eq(action).float()
    given = []  # per actor: its images against the prompts naming it doing each action
    for i, a in enumerate(actors):
        rows = actor == i
        prompts = [f"a photo of {get_actor(a).caption} {ACTIONS[b].phrase}" for b in actions]
        given.append((joint[rows] @ clip_model.embed_texts(model, tok, prompts).T).argmax(1).eq(action[rows]))
    cos, cos_pooled = pair_means(joint, actor, action), pair_means(pooled, actor, action)
    return {
        "retrieval": {"actor_top1": top1(joint, actor_text, actor), "action_top1": float(hits.mean()),
                      "action_top1_known": float(hits[~heldout].mean()) if (~heldout).any() else None,
                      "action_top1_heldout": float(hits[heldout].mean()) if heldout.any() else None,
                      "action_top1_given_actor": float(torch.cat(given).float().mean())},
        "margin": cos["same_action_other_actor"] - cos["same_actor_other_action"],
        "margin_pooled": cos_pooled["same_action_other_actor"] - cos_pooled["same_actor_other_action"],
        "cosines": {"joint": cos, "pooled": cos_pooled},
    }


def lookup(record: dict, key: str):
    for part in key.split("."):
        record = record[part]
    return record


def gate(record: dict) -> dict[str, dict]:
    """Each gate of :data:`GATES` with its value and whether it passed."""
    ops = {">=": float.__ge__, ">": float.__gt__, "<=": float.__le__}
    return {key: {"value": lookup(record, key), "op": op, "bound": bound,
                  "passed": bool(ops[op](float(lookup(record, key)), bound))} for key, (op, bound) in GATES.items()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="a StickWorld CLIP folder (quality.json goes there)")
    p.add_argument("--per-pair", type=int, default=1, help="random takes of each (actor, action) pair")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="evaluation drawing seed")
    p.add_argument("--actors", nargs="*", default=None, help="a subset of actors (default: all)")
    p.add_argument("--actions", nargs="*", default=None, help="a subset of actions (default: all, known + held-out)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(args.threads)
    model, tok = clip_model.load(args.model)
    samples = eval_set(args.seed, args.per_pair, args.actors, args.actions)
    record = measure(model, tok, samples)
    record["gates"] = gate(record)
    record["passed"] = all(g["passed"] for g in record["gates"].values())
    record["eval"] = {"seed": args.seed, "per_pair": args.per_pair, "images": len(samples),
                      "actors": len({s["actor"] for s in samples}), "actions": len({s["action"] for s in samples})}
    record.update(machine=clip_model.machine(), wall_seconds=round(time.time() - t0, 1),
                  command="python -m stickworld.gates.clip_quality "
                  + shlex.join(sys.argv[1:] if argv is None else argv),
                  date=datetime.date.today().isoformat())
    (args.model / "quality.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"retrieval": record["retrieval"], "margin": record["margin"], "passed": record["passed"]}))
    return record


if __name__ == "__main__":
    main()
