"""Where the judges miss on free poses: by view, by actor, and whether a left/right swap would have been right.

``python -m stickworld.gates.judge_failures --weights <judges.safetensors> [--n 600]`` draws ``n`` free poses of the
grammar (as the mixture picks them, seed ``--seed``) and prints a JSON summary: pose accuracy per view, the failure
rate of side views per actor, the median mean joint error of the failures (against :data:`POSE_TOL`) and how many
failures swapping the left and right arms or legs would fix. It tells a precision problem (near misses: more
capacity or training) from an ambiguity of the drawings (swaps: the far limb cannot be told from the near one).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np
import torch

from stickworld.networks import judges
from stickworld.networks.judges import POSE_TOL
from stickworld.world.actions import free_action
from stickworld.world.actors import ACTORS
from stickworld.world.drawing import draw
from stickworld.world.skeleton import JOINTS
from stickworld.world.units import random_units


def swap(parts: tuple[str, ...]) -> list[int]:
    """Joint order with each ``left_<part>`` and ``right_<part>`` exchanged."""
    order = list(range(len(JOINTS)))
    for part in parts:
        a, b = JOINTS.index(f"left_{part}"), JOINTS.index(f"right_{part}")
        order[a], order[b] = b, a
    return order


SWAPS = {"arms": ("shoulder", "elbow", "hand"), "legs": ("hip", "knee", "foot")}


@torch.no_grad()
def analyse(model: judges.Judge, n: int = 600, seed: int = 777) -> dict:
    rng = np.random.default_rng(seed)
    shots = []
    for _ in range(n):
        actor = list(ACTORS)[int(rng.integers(len(ACTORS)))]
        view, units = random_units(rng)
        image, joints = draw(actor, free_action(view, units), 64, rng)
        shots.append((actor, view, image, joints))
    pred, _ = model.eval()(judges.to_tensor([s[2] for s in shots]))
    truth = torch.from_numpy(np.stack([s[3] for s in shots])).float()
    err = (pred - truth).norm(dim=-1).mean(-1)
    ok = err < POSE_TOL
    views = np.array([s[1] for s in shots])
    side_fail, side_all = Counter(), Counter()
    for (actor, view, _, _), right in zip(shots, ok.tolist()):
        if view == "side":
            side_all[actor] += 1
            side_fail[actor] += not right
    fixed = {name: int((~ok & ((pred[:, swap(parts)] - truth).norm(dim=-1).mean(-1) < POSE_TOL)).sum())
             for name, parts in SWAPS.items()}
    return {"n": n, "pose_acc": float(ok.float().mean()),
            "pose_acc_by_view": {v: float(ok[torch.from_numpy(views == v)].float().mean()) for v in ("front", "side")},
            "failures": int((~ok).sum()), "failure_median_err": float(err[~ok].median()) if (~ok).any() else None,
            "pose_tol": POSE_TOL, "fixed_by_swapping": fixed,
            "side_failure_rate_by_actor": dict(sorted(((a, side_fail[a] / side_all[a]) for a in side_all),
                                                      key=lambda kv: -kv[1]))}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="judge weights (default: the shipped judges)")
    p.add_argument("--n", type=int, default=600)
    p.add_argument("--seed", type=int, default=777)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    report = analyse(judges.load(args.weights) if args.weights else judges.load(), args.n, args.seed)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
