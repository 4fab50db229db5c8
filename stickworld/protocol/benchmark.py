"""The StickWorld benchmark: rows (methods, ablations, an upper bound) x held-out actions x training seeds.

``python -m stickworld.protocol.benchmark --out <dir> [--split test] [--seeds 0 1 2] [--steps 800] [--rows ...]`` trains
every (row, action, seed) point with ``experiment=stickworld`` through :func:`twinact.train.training.train` (resumable:
finished points are skipped), evaluates it on ``eval_suite=stickworld`` and writes ``table.md`` / ``table.csv``,
``per_action.md``, ``paired.md``, a grid per action and ``results.json``. Protocol:

- A **replicate** is one (action, training seed): the mean of a metric over all of that run's evaluation images
  (actors the exemplars do not show x prompts x evaluation seeds). Rows report the mean and 95% t-interval over
  replicates; **paired** differences (TwinAct minus each baseline, on the same replicates) a percentile-bootstrap
  interval.
- Every row gets the same optimizer-step budget (``--steps``, split between its stages as in its method's config)
  and effective batch (``--batch`` x ``--accumulate``).
- ``upper_bound`` is not trained: the base model prompted with the held-out pose's unit description (what it
  renders when told the pose); its replicates are (action, evaluation seed). ``Action acc. / upper bound`` divides
  each row's accuracy by it, action by action.
- ``positive_control`` is TwinAct learning known actions (:mod:`stickworld.protocol.positive_control`) with their own
  phrase removed from the action space: a method that cannot recover an action the base model renders is broken.
- ``--curve-steps 100 200 ...`` trains each row at several budgets (use ``--split dev``) and plots action accuracy
  against leakage per row (``curves.png``, ``curves.json``), and each row's leakage at accuracy levels every row
  reaches, against TwinAct's (``curves.md``, :mod:`stickworld.protocol.curves`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate

from stickworld.networks.clip_model import machine
from stickworld.protocol import curves, tables
from stickworld.protocol.compare_methods import (
    check_settings,
    chosen_actions,
    chosen_rates,
    run_point,
    write_grid,
)
from stickworld.protocol.points import run_points
from stickworld.protocol.positive_control import CONTROL_ACTIONS, prepare
from stickworld.world.actions import HELDOUT_ACTIONS, KNOWN_ACTIONS
from stickworld.world.exemplars import exemplar_dir, from_actions_file
from stickworld.world.units import describe
from twinact.config.compose import compose_config
from twinact.eval.evaluation import jobs as suite_jobs
from twinact.eval.scorers import ScoredRun
from twinact.eval.stats import bootstrap_ci95
from twinact.model.models import load_pipeline
from twinact.paths import package_path
from twinact.release.sampling import render_jobs
from twinact.runs.cli import user_errors

UPPER_BOUND, POSITIVE_CONTROL = "upper_bound", "positive_control"
# Row -> overrides on top of experiment=stickworld. The ablations separate TwinAct's parts: the similarity loss (off
# for TwinAct, on for TI+LoRA), the PCA basis (random), the MLP (free coefficients), the per-slot space (pooled)
# and StickWorld's norm cap and small init (the released code's init instead).
ROWS = {
    "twinact": ["method=twinact"],
    "textual_inversion": ["method=textual_inversion"],
    "lora": ["method=lora"],
    "ti_lora": ["method=ti_lora"],
    "twinact_no_similarity": ["method=twinact", "method.similarity_weight=0"],
    "twinact_random_basis": ["method=twinact", "action_space.basis=random"],
    "twinact_direct_coefficients": ["method=twinact", "method.coefficients=direct"],
    "twinact_pooled_space": ["method=twinact", "action_space=pooled"],
    "twinact_released_init": ["method=twinact", "action_space.init_scale=1.0", "method.max_norm=null"],
    "ti_lora_similarity": ["method=ti_lora", "method.similarity_weight=0.15"],
    "twinact_appearance_free": ["method=twinact", "action_space.remove_appearance=true"],
    POSITIVE_CONTROL: ["method=twinact"],  # on CONTROL_ACTIONS, each without its own phrase in the space
}
BASELINES = ("textual_inversion", "lora", "ti_lora")
# (a, b): a minus b on shared replicates. TwinAct against each baseline; each variant against what it varies, so a
# negative Action acc. difference of an ablation is what the removed part contributed.
PAIRS = ([("twinact", b) for b in BASELINES]
         + [(r, "twinact") for r in ROWS if r.startswith("twinact_")]
         + [("ti_lora_similarity", "ti_lora")])
PAIRED = ("s_action", "action_correct", "pose_distance", "s_actor_clip", "leakage", "leakage_clip")


def row_overrides(row: str, action: str, seed: int, steps: int, batch: int, accumulate: int, run_dir: Path,
                  extra: list[str]) -> list[str]:
    """Overrides of one point: the row's method with its stages scaled to ``steps`` optimizer steps in all."""
    base = ["experiment=stickworld", *ROWS[row], f"action.name={action}", f"seed={seed}",
            f"data.batch_size={batch}", f"trainer.accumulate_grad_batches={accumulate}", *extra]
    stages = compose_config(base).method
    s1 = round(steps * stages.stage1.steps / (stages.stage1.steps + stages.stage2.steps))
    return base + [f"method.stage1.steps={s1}", f"method.stage2.steps={steps - s1}", f"run_dir={run_dir}",
                   "resume=auto", "eval=true"]


def row_method(row: str) -> str:
    """The method a row is built on (its ``method=`` override)."""
    return next(o.split("=", 1)[1] for o in ROWS[row] if o.startswith("method="))


def upper_bound(action: str, suite, out: Path, extra: list[str]) -> dict[int, dict[str, float]]:
    """The base model told the pose (its unit description), scored like a trained row; replicates by evaluation
    seed.
    Cached in ``<out>/upper_bound/<action>.json``."""
    path = out / UPPER_BOUND / f"{action}.json"
    if path.is_file():
        return {int(k): v for k, v in json.loads(path.read_text()).items()}
    cfg = compose_config(["experiment=stickworld", f"action.name={action}", *extra])
    pose = HELDOUT_ACTIONS[action]
    if not pose.units:
        print(f"upper bound: {action} has no units (its pose-grammar description), so it is left out", flush=True)
        return {}
    todo = suite_jobs(suite, describe(pose.pose.view, pose.units))
    pipe = load_pipeline(str(package_path(cfg.model.pretrained)))
    pipe.set_progress_bar_config(disable=True)
    guidance = suite.guidance_scale if suite.guidance_scale is not None else cfg.model.guidance_scale
    images = [im for _, im in render_jobs(pipe, todo, steps=suite.steps, guidance_scale=guidance,
                                          resolution=cfg.data.resolution, batch_size=suite.batch_size)]
    scored = ScoredRun(cfg.action.name, cfg.action.image_dir, cfg.model.clip_vision)
    scores, _ = instantiate(suite.scorer)(images, todo, suite, scored, [])
    per_seed = {}
    for seed in suite.seeds:
        per_seed[int(seed)] = tables.replicate_means([{k: v[i] for k, v in scores.items()}
                                                     for i, j in enumerate(todo) if j["seed"] == seed])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(per_seed, indent=2))
    return per_seed


def summarize(replicates: dict[str, dict[tuple, dict]], seeds: dict[str, list[int]]) -> list[dict]:
    """The rows of :func:`stickworld.protocol.tables.summarize`, with Action acc. as a fraction of the upper bound."""
    rows = tables.summarize(replicates, seeds)
    ub = replicates.get(UPPER_BOUND)
    if ub:  # accuracy as a fraction of what the base model renders when told the pose, action by action
        bound = {a: np.mean([rep["action_correct"] for (act, _), rep in ub.items() if act == a])
                 for a in {a for a, _ in ub}}
        for out in rows:
            ratios = [rep["action_correct"] / bound[a] for (a, _), rep in replicates[out["method"]].items()
                      if bound.get(a, 0) > 0]
            if ratios:
                out["action_correct_of_upper_bound"] = float(np.mean(ratios))
    return rows


def paired(replicates: dict[str, dict[tuple, dict]], pairs=PAIRS) -> list[dict]:
    """``a`` minus ``b`` for each pair both rows of which ran, per metric, on the replicates both have: mean and
    bootstrap CI95 over replicates."""
    out = []
    for a, b in pairs:
        if a not in replicates or b not in replicates:
            continue
        shared = sorted(set(replicates[a]) & set(replicates[b]))
        for metric in PAIRED:
            diffs = [replicates[a][k][metric] - replicates[b][k][metric] for k in shared
                     if metric in replicates[a][k] and metric in replicates[b][k]]
            if diffs:
                mean, ci = bootstrap_ci95(diffs)
                out.append({"a": a, "b": b, "metric": metric, "mean": mean, "ci95": list(ci),
                            "replicates": len(diffs)})
    return out


def write_paired(out: Path, pairs: list[dict]) -> None:
    lines = ["Paired differences over shared (action, training seed) replicates; 95% percentile bootstrap.", "",
             "| a - b | metric | mean | 95% CI | n (replicates) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {p['a']} - {p['b']} | {p['metric']} | {p['mean']:+.3f} | [{p['ci95'][0]:+.3f}, "
              f"{p['ci95'][1]:+.3f}] | {p['replicates']} |" for p in pairs]
    (out / "paired.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", choices=("test", "dev"), default="test", help="held-out actions: test (report) or dev")
    p.add_argument("--actions", nargs="+", default=None, help="held-out actions by name, instead of --split")
    p.add_argument("--actions-file", type=Path, default=None,
                   help="your own held-out actions (a JSON list in the format of "
                        "stickworld/data/heldout_actions.json); "
                        "their exemplars are drawn into OUT/exemplars, --split picks among them")
    p.add_argument("--rows", nargs="+", default=list(ROWS) + [UPPER_BOUND], choices=list(ROWS) + [UPPER_BOUND])
    p.add_argument("--control-actions", nargs="+", default=list(CONTROL_ACTIONS), choices=list(KNOWN_ACTIONS),
                   help="known actions of the positive control")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds")
    p.add_argument("--steps", type=int, default=800, help="optimizer steps per run (the paper: 200 + 600)")
    p.add_argument("--curve-steps", nargs="*", type=int, default=[], help="budgets of the accuracy/leakage curves")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--accumulate", type=int, default=2, help="gradient accumulation: effective batch = batch x this")
    p.add_argument("--grid-actions", nargs="*", default=None, help="default: every action")
    p.add_argument("--rates", type=Path, default=None,
                   help="rates.json of stickworld.protocol.lr_grid: each method's chosen rates, for every row built "
                        "on it (default: the configs' rates)")
    p.add_argument("--jobs", type=int, default=1,
                   help="points trained at once, each in its own process on one thread (e.g. 2 on 2 cores)")
    p.add_argument("overrides", nargs="*", help="more Hydra overrides for every run")
    args = p.parse_args(argv)
    command = "python -m stickworld.protocol.benchmark " + shlex.join(sys.argv[1:] if argv is None else argv)
    rates = chosen_rates(args.rates)
    settings = {"steps": args.steps, "batch": args.batch, "accumulate": args.accumulate, "overrides": args.overrides,
                **({"rates": rates} if rates else {})}
    listed, drawn = (None, None) if args.actions_file is None else from_actions_file(args.actions_file, args.out)
    if listed is not None:
        settings["actions_file"] = {k: repr(v) for k, v in listed.items()}
    actions = chosen_actions(args.actions, args.split, listed)
    check_settings(args.out, settings)
    start = time.time()
    suite = compose_config(["experiment=stickworld", *args.overrides]).eval_suite
    trained = [r for r in args.rows if r != UPPER_BOUND]
    budgets = sorted(set([args.steps, *args.curve_steps]))
    replicates: dict[int, dict[str, dict[tuple, dict]]] = {b: {} for b in budgets}
    run_dirs: dict[str, dict[str, Path]] = {}
    # seed by seed: a sweep cut short leaves every row at the same seeds
    points = [(b, r, a, s) for b in budgets for s in args.seeds for r in trained
              for a in (args.control_actions if r == POSITIVE_CONTROL else actions)]
    todo, labels = [], []
    for n, (budget, row, action, seed) in enumerate(points, 1):
        run_dir = args.out / "runs" / f"steps{budget}" / action / row / f"seed{seed}"
        labels.append(f"[{n}/{len(points)}] {row} on {action}, seed {seed}, {budget} steps -> {run_dir}")
        extra = args.overrides + rates.get(row_method(row), []) + (
            prepare(action, args.out / POSITIVE_CONTROL) if row == POSITIVE_CONTROL
            else [f"action.image_dir={exemplar_dir(action, drawn)}"])
        todo.append(row_overrides(row, action, seed, budget, args.batch, args.accumulate, run_dir, extra))
        if budget == args.steps:
            run_dirs.setdefault(action, {}).setdefault(row, run_dir)
    for (budget, row, action, seed), result in zip(points, run_points(run_point, todo, args.jobs, labels)):
        replicates[budget].setdefault(row, {})[(action, seed)] = tables.replicate_means(result["per_image"])
    main_replicates = replicates[args.steps]
    if UPPER_BOUND in args.rows:
        main_replicates[UPPER_BOUND] = {
            (a, s): rep for a in actions for s, rep in upper_bound(
                a, suite, args.out, args.overrides + [f"action.image_dir={exemplar_dir(a, drawn)}"]).items()}
        if not main_replicates[UPPER_BOUND]:
            del main_replicates[UPPER_BOUND]
    seeds = {r: ([] if r == UPPER_BOUND else list(args.seeds)) for r in main_replicates}
    rows, pairs = summarize(main_replicates, seeds), paired(main_replicates)
    header = (f"Command: `{command}`\n\n{len(actions)} held-out actions ({', '.join(actions)}) x training seeds "
              f"{args.seeds}; {args.steps} optimizer steps per run at effective batch {args.batch * args.accumulate}; "
              f"a replicate is one (action, training seed), the upper bound's one (action, evaluation seed); mean ± "
              f"95% t-interval over replicates. Machine: {machine()}.")
    per_action = tables.per_action_means(main_replicates)
    tables.write(args.out, rows, per_action, header)
    write_paired(args.out, pairs)
    for action in actions if args.grid_actions is None else args.grid_actions:
        if action in run_dirs:
            write_grid(args.out, action, run_dirs[action], suite, exemplar_dir(action, drawn))
    curve_rows = [r for r in trained if r != POSITIVE_CONTROL]  # the control's units are other actions
    curve_points = [p for r in curve_rows for p in curves.curve(replicates, r)] if args.curve_steps else []
    matched = curves.matched(replicates, curve_rows) if args.curve_steps else []
    if curve_points:
        curves_json = {"points": curve_points, "matched": matched}
        (args.out / "curves.json").write_text(json.dumps(curves_json, indent=2) + "\n")
        curves.write_matched(args.out / "curves.md", matched)
        curves.plot(curve_points, sorted({e["action_correct"] for e in matched}), args.out / "curves.png")
    (args.out / "results.json").write_text(json.dumps(
        {"command": command, "machine": machine(), "actions": actions, "steps": args.steps,
         "effective_batch": args.batch * args.accumulate, "rows": rows, "paired": pairs,
         "per_action": per_action, "curves": curve_points, "matched_accuracy": matched,
         "seconds": round(time.time() - start)}, indent=2) + "\n")  # this invocation: skipped points cost nothing
    print((args.out / "table.md").read_text())
    return args.out / "results.json"


if __name__ == "__main__":
    with user_errors():
        main()
