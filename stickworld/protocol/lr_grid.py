"""The learning-rate grid on the dev actions: each method's rates scaled together, the best scale kept.

``python -m stickworld.protocol.lr_grid --out <dir> [--scales 0.333 1 3] [--methods ...] [--jobs 2]`` trains every
(method, scale, dev action, seed) point at the benchmark's budget, with every rate the method trains (its vectors'
``method.stage1.lr`` and its LoRA's ``method.stage2.lora_lr``) multiplied by the scale, and writes ``grid.md`` and
``rates.json``: per method the scale with the highest mean action accuracy over the dev replicates (ties go to the
scale nearest 1) and the overrides it stands for. ``python -m stickworld.protocol.benchmark --rates <dir>/rates.json``
gives those overrides to every row built on that method.

One scale for all of a method's rates keeps the grid small (3 points a method) and leaves the ratio between a
method's rates as its config sets it.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from stickworld.networks.clip_model import machine
from stickworld.protocol import tables
from stickworld.protocol.benchmark import row_overrides
from stickworld.protocol.compare_methods import METHODS, check_settings, chosen_actions, run_point
from stickworld.protocol.points import run_points
from stickworld.world.exemplars import exemplar_dir
from twinact.config.compose import compose_config
from twinact.runs.cli import user_errors

SCORE = "action_correct"


def rate_overrides(method: str, scale: float) -> list[str]:
    """The overrides that multiply every rate ``method`` trains with by ``scale``."""
    m = compose_config(["experiment=stickworld", f"method={method}"]).method
    out = []
    if m.vectors != "fixed":
        out.append(f"method.stage1.lr={m.stage1.lr * scale:.4g}")
    if m.lora and m.stage2.steps > 0:
        out.append(f"method.stage2.lora_lr={m.stage2.lora_lr * scale:.4g}")
    return out


def read_grid(out: Path, actions: list[str], seeds: list[int]) -> tuple[dict, dict[tuple[str, float], Path]]:
    """The grid from every finished point under ``out/runs`` on these actions and seeds, earlier invocations' too (a
    grid extended by more scales or methods is read whole).

    Returns:
        method -> scale -> its replicates, mean action accuracy and leakage, accuracy per action; and a run of each
        (method, scale).
    """
    table: dict[str, dict[float, dict]] = {}
    runs = {}
    for metrics in sorted(out.glob("runs/*/x*/*/seed*/eval/metrics.json")):
        run = metrics.parent.parent
        method, scale, action, seed = (run.parents[2].name, float(run.parents[1].name[1:]), run.parent.name,
                                       int(run.name.removeprefix("seed")))
        if method not in METHODS or action not in actions or seed not in seeds:
            continue
        runs[method, scale] = run
        cell = table.setdefault(method, {}).setdefault(scale, {"replicates": {}})
        images = json.loads(metrics.read_text())["per_image"]
        cell["replicates"][f"{action}/seed{seed}"] = tables.replicate_means(images)
    for by in table.values():
        for cell in by.values():
            reps = cell["replicates"]
            cell[SCORE] = float(np.mean([r[SCORE] for r in reps.values()]))
            cell["leakage"] = float(np.mean([r["leakage"] for r in reps.values()]))
            cell["per_action"] = {a: float(np.mean([r[SCORE] for k, r in reps.items() if k.startswith(a + "/")]))
                                  for a in actions if any(k.startswith(a + "/") for k in reps)}
    return table, runs


def trained_rates(method: str, run: Path) -> list[str]:
    """The rate overrides a finished point trained with, read from its config (a scale's folder name is rounded)."""
    cfg = OmegaConf.load(run / "config.yaml")
    keys = [o.split("=", 1)[0] for o in rate_overrides(method, 1.0)]
    return [f"{k}={OmegaConf.select(cfg, k):.4g}" for k in keys]


def choose(scores: dict[float, float]) -> float:
    """The scale of the highest score; among equal scores the one nearest 1 (the config's own rates)."""
    return max(scores, key=lambda s: (round(scores[s], 6), -abs(math.log(s))))


def write_table(out: Path, commands: list[str], table: dict, chosen: dict, actions: list[str],
                seeds: list[int]) -> None:
    scales = sorted({s for by in table.values() for s in by})
    lines = [*(f"Command: `{c}`" for c in commands), "",
             f"Mean over {len(actions)} dev actions ({', '.join(actions)}) x training seeds {seeds}; one scale "
             f"multiplies every rate of a method. Machine: {machine()}.", "",
             "| method | " + " | ".join(f"x{s:.3g} acc. / leakage" for s in scales) + " | chosen |",
             "| --- |" + " --- |" * (len(scales) + 1)]
    for method, by in table.items():
        cells = [f"{by[s][SCORE]:.3f} / {by[s]['leakage']:+.3f}" if s in by else "" for s in scales]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | x{chosen[method]['scale']:.3g} "
                     f"({', '.join(chosen[method]['overrides']) or 'no rate'}) |")
    lines += ["", "Per action, action accuracy:", "",
              "| method | scale | " + " | ".join(actions) + " |", "| --- | --- |" + " --- |" * len(actions)]
    for method, by in table.items():
        for s in scales:
            if s in by:
                lines.append(f"| {method} | x{s:.3g} | " + " | ".join(f"{by[s]['per_action'].get(a, float('nan')):.2f}"
                                                                 for a in actions) + " |")
    (out / "grid.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--scales", nargs="+", type=float, default=[1 / 3, 1.0, 3.0],
                   help="run these scales; the table and rates.json read every scale already in --out too")
    p.add_argument("--actions", nargs="+", default=None, help="default: the dev split's")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--accumulate", type=int, default=2)
    p.add_argument("--jobs", type=int, default=1, help="points trained at once, one thread each")
    p.add_argument("overrides", nargs="*", help="more Hydra overrides for every run")
    args = p.parse_args(argv)
    command = "python -m stickworld.protocol.lr_grid " + shlex.join(sys.argv[1:] if argv is None else argv)
    actions = chosen_actions(args.actions, "dev", None)
    check_settings(args.out, {"steps": args.steps, "batch": args.batch, "accumulate": args.accumulate,
                              "overrides": args.overrides})
    start = time.time()
    points = [(m, s, a, seed) for m in args.methods for s in args.scales for a in actions for seed in args.seeds]
    todo, labels = [], []
    for n, (method, scale, action, seed) in enumerate(points, 1):
        run_dir = args.out / "runs" / method / f"x{scale:.4g}" / action / f"seed{seed}"
        labels.append(f"[{n}/{len(points)}] {method} x{scale:.4g} on {action}, seed {seed} -> {run_dir}")
        extra = [*args.overrides, f"action.image_dir={exemplar_dir(action, None)}", *rate_overrides(method, scale)]
        todo.append(row_overrides(method, action, seed, args.steps, args.batch, args.accumulate, run_dir, extra))
    run_points(run_point, todo, args.jobs, labels)
    table, runs = read_grid(args.out, actions, args.seeds)
    chosen = {}
    for method, by in table.items():  # among the scales that ran on every action and seed
        scale = choose({s: c[SCORE] for s, c in by.items() if len(c["replicates"]) == len(actions) * len(args.seeds)})
        chosen[method] = {"scale": scale, "overrides": trained_rates(method, runs[method, scale])}
    previous = json.loads((args.out / "rates.json").read_text()) if (args.out / "rates.json").is_file() else {}
    commands = [c for c in previous.get("commands", []) if c != command] + [command]  # each that added points
    write_table(args.out, commands, table, chosen, actions, args.seeds)
    (args.out / "rates.json").write_text(json.dumps(
        {"commands": commands, "machine": machine(), "actions": actions, "seeds": args.seeds, "steps": args.steps,
         "chosen": chosen, "grid": {m: {f"{s:g}": c for s, c in by.items()} for m, by in table.items()},
         "seconds": round(time.time() - start)}, indent=2) + "\n")
    print((args.out / "grid.md").read_text())
    return args.out / "rates.json"


if __name__ == "__main__":
    with user_errors():
        main()
