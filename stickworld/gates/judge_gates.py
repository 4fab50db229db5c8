"""The judges' gates: do they read every actor's poses, and do they keep other poses off a held-out action?

``python -m stickworld.gates.judge_gates [--weights W] [--vae FOLDER] [--write]`` draws every actor doing every known
and every held-out action ``--takes`` times (random takes: jittered joints, size, position and scene), and as many
free poses of the pose grammar, optionally through a VAE and back as a generation always comes, and reads them:

- ``known`` / ``heldout`` / ``free``: pose accuracy (mean joint error under :data:`POSE_TOL` of the image), actor
  accuracy and joint errors, with the pose accuracy of each actor under ``per_actor`` (the gate takes the lowest);
- ``false_accept``: for each held-out action, the share of drawings of every *other* action (known and held-out) whose
  nearest action (by normalised pose distance on the drawn actor's body, over all actions) is that held-out
  action: how often a customization would be credited with a pose it did not render. ``max`` and ``mean`` over the
  held-out actions, and each one's under ``per_action``.

The gates (:data:`GATES`) are read on clean drawings; ``--vae`` also reads every drawing after a round trip through a
base model's VAE, as a generation always comes (reported, not gated). ``--write`` records them as ``metrics`` and
``metrics_through_vae`` in the weights' JSON sidecar (``data/judges.json``) with the command. Free-pose accuracy is
reported, never gated.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stickworld.networks import judges
from stickworld.networks.judges import POSE_TOL
from stickworld.protocol.scoring import nearest_action
from stickworld.world.actions import ACTIONS, HELDOUT_ACTIONS, KNOWN_ACTIONS, free_action
from stickworld.world.actors import ACTORS
from stickworld.world.drawing import draw
from stickworld.world.units import random_units

GATES = {"known.min_actor_pose_acc": (">=", 0.95), "heldout.min_actor_pose_acc": (">=", 0.95),
         "false_accept.max": ("<=", 0.02)}


def drawings(kind: str, takes: int, seed: int) -> list[dict]:
    """Per actor, every action of ``kind`` (known / heldout) ``takes`` times, or for ``free`` that many free poses
    per held-out action: ``image``, ``joints``, ``actor``, ``action`` (``free`` for free poses)."""
    rng = np.random.default_rng([seed, ("known", "heldout", "free").index(kind)])
    names = list(KNOWN_ACTIONS if kind == "known" else HELDOUT_ACTIONS)
    out = []
    for actor in ACTORS:
        for _ in range(len(names) * takes):
            name = names[len(out) % (len(names) * takes) // takes]
            action = ACTIONS[name] if kind != "free" else free_action(*random_units(rng))
            image, joints = draw(actor, action, 64, rng)
            out.append({"image": image, "joints": joints, "actor": actor, "action": action.name})
    return out


def through_vae(images: list, vae) -> list:
    """``images`` after a round trip through ``vae`` (:func:`judges.vae_round_trip`), as 8-bit images."""
    from PIL import Image

    out = []
    for i in range(0, len(images), 64):
        y = judges.vae_round_trip(vae, judges.to_tensor(images[i:i + 64]))
        out += [Image.fromarray(a) for a in (y * 255).round().byte().permute(0, 2, 3, 1).numpy()]
    return out


def _scores(items: list[dict], err: np.ndarray, actor_ok: np.ndarray) -> dict:
    ok = err < POSE_TOL
    per_actor = {a: float(ok[[i for i, s in enumerate(items) if s["actor"] == a]].mean()) for a in ACTORS}
    return {"pose_acc": float(ok.mean()), "actor_acc": float(actor_ok.mean()), "mean_joint_err": float(err.mean()),
            "median_joint_err": float(np.median(err)), "n": len(items), "per_actor": per_actor,
            "min_actor_pose_acc": min(per_actor.values())}


def false_accepts(items: list[dict], joints: np.ndarray) -> dict:
    """Per held-out action, the share of drawings of other actions read as it (nearest of all actions)."""
    candidates = list(ACTIONS)
    read = [nearest_action(joints[i:i + 1], s["actor"], candidates)[0] for i, s in enumerate(items)]
    per_action = {}
    for h in HELDOUT_ACTIONS:
        others = [r for r, s in zip(read, items) if s["action"] != h]
        per_action[h] = float(np.mean([r == h for r in others]))
    return {"max": max(per_action.values()), "mean": float(np.mean(list(per_action.values()))),
            "n": len(items), "per_action": per_action}


def measure(model: judges.Judge, takes: int = 2, seed: int = 2_000_003, vae=None) -> dict:
    """The judges' metrics on fresh drawings (see the module docstring); the gates under ``gates``."""
    out, named = {}, []
    for kind in ("known", "heldout", "free"):
        items = drawings(kind, takes if kind != "free" else max(1, takes * len(KNOWN_ACTIONS) // 10), seed)
        images = [s["image"] for s in items]
        if vae is not None:
            images = through_vae(images, vae)
        joints, probs = judges.predict(images, model)
        err = np.linalg.norm(joints - np.stack([s["joints"] for s in items]), axis=-1).mean(-1)
        actor_ok = probs.argmax(1) == np.array([list(ACTORS).index(s["actor"]) for s in items])
        out[kind] = _scores(items, err, actor_ok)
        if kind != "free":
            named += [(s, j) for s, j in zip(items, joints)]
    out["false_accept"] = false_accepts([s for s, _ in named], np.stack([j for _, j in named]))
    out["gates"] = check(out)
    return out


def check(metrics: dict) -> dict[str, bool]:
    """Each gate of :data:`GATES`: passed or not."""
    result = {}
    for key, (op, bar) in GATES.items():
        group, name = key.split(".")
        value = metrics[group][name]
        result[key] = bool(value >= bar if op == ">=" else value <= bar)
    return result


def summary(name: str, metrics: dict) -> str:
    lines = [f"{name}:"]
    for kind in ("known", "heldout", "free"):
        m = metrics[kind]
        lines.append(f"  {kind}: pose {m['pose_acc']:.3f} (lowest actor {m['min_actor_pose_acc']:.3f}) "
                     f"actor {m['actor_acc']:.3f} n {m['n']}")
    fa = metrics["false_accept"]
    lines.append(f"  false accept: max {fa['max']:.4f} mean {fa['mean']:.4f}; gates {metrics['gates']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=judges.DEFAULT_WEIGHTS)
    p.add_argument("--vae", default=None, help="a diffusers VAE folder: also read every drawing after a round trip "
                                               "(recorded as metrics_through_vae; the gates are on clean drawings)")
    p.add_argument("--takes", type=int, default=2, help="random takes of each (actor, action)")
    p.add_argument("--seed", type=int, default=2_000_003, help="drawing seed (the judges never trained on it)")
    p.add_argument("--write", action="store_true", help="record the metrics in the weights' JSON sidecar")
    args = p.parse_args(argv)
    vae = None
    if args.vae:
        from diffusers import AutoencoderKL

        from twinact.paths import package_path

        vae = AutoencoderKL.from_pretrained(str(package_path(args.vae)), torch_dtype=torch.float32).eval()
    t0 = time.time()
    model = judges.load(args.weights)
    metrics = measure(model, args.takes, args.seed)
    through = measure(model, args.takes, args.seed, vae) if vae is not None else None
    metrics.update(command="python -m stickworld.gates.judge_gates "
                   + shlex.join(sys.argv[1:] if argv is None else argv),
                   seconds=round(time.time() - t0, 1), takes=args.takes, seed=args.seed)
    for name, m in (("clean drawings", metrics), (f"through {args.vae}", through)):
        if m is not None:
            print(summary(name, m))
    if args.write:
        meta = judges.load_meta(args.weights)
        meta["metrics"] = metrics
        if through is not None:
            meta["metrics_through_vae"] = {**through, "vae": args.vae}
        args.weights.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return metrics


if __name__ == "__main__":
    main()
