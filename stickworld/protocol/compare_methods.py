"""The StickWorld method comparison: every held-out action x every method, scored against the true pose.

``python -m stickworld.protocol.compare_methods --out experiments/stickworld_comparison`` (``make stickworld-compare``)
trains each (action, method, seed) point with ``experiment=stickworld`` through the same ``train()`` as
``train.py``, evaluates it on ``eval_suite=stickworld`` (actors the exemplars do not show, several seeds), then writes:

- ``table.md`` / ``table.csv``: methods x the metrics of :mod:`stickworld.protocol.tables`, mean ± 95% interval over
  (action, evaluation seed) replicates, with the replicate count n;
- ``per_action.md``: Action acc. and S_Action per action and method;
- ``grid_<action>.png``: the exemplars, the true pose on each evaluation actor, then one row per method.

Runs live under ``<out>/runs/<action>/<method>/seed<k>`` with ``resume: auto``: a rerun skips finished points and
continues unfinished ones, so the whole sweep can be stopped and restarted. Every method gets the same step budget
(``--steps``), split between its stages as in its own config.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from stickworld.protocol import tables
from stickworld.protocol.points import run_points
from stickworld.world.actions import HELDOUT_ACTIONS, Action
from stickworld.world.drawing import draw
from stickworld.world.exemplars import exemplar_dir, from_actions_file
from twinact.config.compose import compose_config
from twinact.errors import TwinActError
from twinact.method.data import load_exemplars
from twinact.runs.cli import user_errors
from twinact.train.training import train

METHODS = ("twinact", "textual_inversion", "lora", "ti_lora")
def method_names() -> list[str]:
    """The `method=` options (conf/method/*.yaml)."""
    return sorted(f.name.removesuffix(".yaml") for f in resources.files("twinact.conf").joinpath("method").iterdir()
                  if f.name.endswith(".yaml"))


def chosen_actions(names: list[str] | None, split: str, listed: dict[str, Action] | None) -> list[str]:
    """The held-out actions of a sweep: ``names`` (checked), else ``split``'s, from ``listed`` (a user's actions file)
    or the shipped list."""
    pool = listed if listed is not None else HELDOUT_ACTIONS
    if names:
        unknown = [n for n in names if n not in pool]
        if unknown:
            raise TwinActError(f"unknown held-out action(s) {', '.join(unknown)}; choose from {', '.join(pool)}")
        return list(names)
    chosen = [name for name, a in pool.items() if a.split == split]
    if not chosen:
        other = "dev" if split == "test" else "test"
        raise TwinActError(f"no held-out action has split {split!r}; give --split {other} or --actions <name> ...")
    return chosen


def point_overrides(action: str, method: str, seed: int, steps: int, run_dir: Path, extra: list[str]) -> list[str]:
    """Overrides of one point: the method's stages scaled to ``steps`` optimizer steps in all."""
    base = ["experiment=stickworld", f"method={method}", f"action.name={action}", f"seed={seed}"] + extra
    stages = compose_config(base).method
    total = stages.stage1.steps + stages.stage2.steps
    s1 = round(steps * stages.stage1.steps / total)
    return base + [f"method.stage1.steps={s1}", f"method.stage2.steps={steps - s1}", f"run_dir={run_dir}",
                   "resume=auto", "eval=true"]


def chosen_rates(path: Path | None) -> dict[str, list[str]]:
    """method -> the rate overrides :mod:`stickworld.protocol.lr_grid` chose for it (none without a file)."""
    if path is None:
        return {}
    if not path.is_file():
        raise TwinActError(f"--rates {path} does not exist; run python -m stickworld.protocol.lr_grid --out <dir> "
                           "first and give <dir>/rates.json")
    return {m: c["overrides"] for m, c in json.loads(path.read_text())["chosen"].items()}


def check_settings(out: Path, settings: dict) -> None:
    """Record the sweep's settings in ``<out>/comparison.json``; refuse an ``out`` made with other ones, since its
    finished runs would be skipped (resume) and silently mixed into the new table."""
    path = out / "comparison.json"
    if path.is_file() and (old := json.loads(path.read_text())) != settings:
        raise TwinActError(f"{out} holds a comparison made with other settings ({old}); give another --out or the "
                           "same --steps and overrides.")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings) + "\n")


def run_point(overrides: list[str]) -> dict:
    cfg = compose_config(overrides)
    result = train(cfg)
    return json.loads((Path(result.run_dir) / "eval" / "metrics.json").read_text())


def method_replicates(results: dict[tuple[str, str, int], dict]) -> dict[str, dict[tuple, dict]]:
    """method -> (action, evaluation seed) -> the replicate's metric means (over its actors and prompts), pooling
    training seeds: with one training seed per point, the evaluation seeds are the independent repeats there are."""
    replicates: dict[str, dict[tuple, dict]] = {}
    for (action, method, _), res in results.items():
        by_seed: dict[int, list[dict]] = {}
        for img in res["per_image"]:
            by_seed.setdefault(img["seed"], []).append(img)
        for seed, images in by_seed.items():
            replicates.setdefault(method, {})[(action, seed)] = tables.replicate_means(images)
    return replicates


# What the grid's row labels call each method and benchmark variant (other rows keep their names).
DISPLAY = {"twinact": "TwinAct", "textual_inversion": "Textual Inversion", "lora": "LoRA", "ti_lora": "TI+LoRA",
           "twinact_no_similarity": "TwinAct, no sim. loss", "twinact_random_basis": "TwinAct, random basis",
           "twinact_direct_coefficients": "TwinAct, direct coef.", "twinact_pooled_space": "TwinAct, pooled space",
           "twinact_released_init": "TwinAct, released init", "ti_lora_similarity": "TI+LoRA, sim. loss",
           "twinact_appearance_free": "TwinAct, no appearance"}


def write_grid(out: Path, action: str, run_dirs: dict[str, Path], bench, image_dir: str | None = None,
               tile: int = 128) -> Path:
    """A titled grid for a reader new to StickWorld: the exemplars; the true pose on each evaluation actor; then each
    method's first-seed image per actor, its row labelled with the run's action accuracy. 64-px renders are scaled
    up (nearest neighbour, so no detail is invented)."""
    actors = list(bench.actors)
    exemplars = [e.image for e in load_exemplars(image_dir or exemplar_dir(action, None), 64)]
    rows = [("exemplars", "(the input)", exemplars),
            ("true pose", "(the target)", [draw(a.id, action)[0] for a in actors])]
    for method, run in run_dirs.items():
        seed = bench.seeds[0]
        metrics = json.loads((run / "eval" / "metrics.json").read_text())
        shots = {(s["actor"], s["template"], s["seed"]): s["file"] for s in metrics["per_image"]}
        accuracy = metrics["aggregate"].get("action_correct")
        note = f"action acc. {accuracy:.2f}" if accuracy is not None else ""
        rows.append((DISPLAY.get(method, method), note,
                     [Image.open(run / "eval" / "images" / shots[(a.name, 0, seed)]) for a in actors]))
    font, small = ImageFont.load_default(size=18), ImageFont.load_default(size=14)
    label_w = max(190, 12 + int(max(max(font.getlength(label), small.getlength(note)) for label, note, _ in rows)))
    title_h, foot_h = 34, 24
    cols = max(len(images) for _, _, images in rows)
    grid = Image.new("RGB", (label_w + cols * tile, title_h + len(rows) * tile + foot_h), "white")
    pen = ImageDraw.Draw(grid)
    pen.text((6, 6), f"{action.replace('_', ' ')}: learned from the exemplars, drawn by actors they do not show; one "
                     f"image each (first prompt, seed {bench.seeds[0]}); action acc. over {len(actors)} actors x "
                     f"{len(bench.templates)} prompts x {len(bench.seeds)} seeds", fill="black", font=small)
    for c, a in enumerate(actors):
        pen.text((label_w + c * tile + 4, title_h + len(rows) * tile + 4), a.id.replace("_", " "), fill="black",
                 font=small)
    for r, (label, note, images) in enumerate(rows):
        top = title_h + r * tile
        pen.text((6, top + tile // 2 - 20), label, fill="black", font=font)
        pen.text((6, top + tile // 2 + 4), note, fill="dimgray", font=small)
        for c, im in enumerate(images):
            grid.paste(im.convert("RGB").resize((tile, tile), Image.Resampling.NEAREST), (label_w + c * tile, top))
    path = out / f"grid_{action}.png"
    grid.save(path)
    return path


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--actions", nargs="+", default=None,
                   help="held-out actions by name (default: the test split's; tune on --split dev)")
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--actions-file", type=Path, default=None,
                   help="your own held-out actions (a JSON list in the format of "
                        "stickworld/data/heldout_actions.json); "
                        "their exemplars are drawn into OUT/exemplars")
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   choices=method_names())
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (evaluation: eval_suite.seeds)")
    p.add_argument("--steps", type=int, default=400, help="optimizer steps per method, all stages together")
    p.add_argument("--grid-actions", nargs="*", default=["three_point_landing"])
    p.add_argument("--jobs", type=int, default=1,
                   help="points trained at once, each in its own process on one thread (e.g. 2 on 2 cores)")
    p.add_argument("--rates", type=Path, default=None,
                   help="rates.json of stickworld.protocol.lr_grid: each method's chosen rates (default: the configs')")
    p.add_argument("overrides", nargs="*", help="more Hydra overrides for every run, e.g. data.batch_size=8")
    args = p.parse_args(argv)
    command = "python -m stickworld.protocol.compare_methods " + shlex.join(sys.argv[1:] if argv is None else argv)
    rates = chosen_rates(args.rates)
    settings = {"steps": args.steps, "overrides": args.overrides, **({"rates": rates} if rates else {})}
    listed, drawn = (None, None) if args.actions_file is None else from_actions_file(args.actions_file, args.out)
    if listed is not None:
        settings["actions_file"] = {k: repr(v) for k, v in listed.items()}
    args.actions = chosen_actions(args.actions, args.split, listed)
    check_settings(args.out, settings)
    start = time.time()
    run_dirs, todo, labels = {}, [], []
    points = [(a, m, s) for a in args.actions for m in args.methods for s in args.seeds]
    for n, (action, method, seed) in enumerate(points, 1):
        run_dir = args.out / "runs" / action / method / f"seed{seed}"
        labels.append(f"[{n}/{len(points)}] {method} on {action}, training seed {seed} -> {run_dir}")
        todo.append(point_overrides(action, method, seed, args.steps, run_dir, args.overrides + rates.get(method, [])
                                    + [f"action.image_dir={exemplar_dir(action, drawn)}"]))
        run_dirs.setdefault(action, {}).setdefault(method, run_dir)
    results = dict(zip(points, run_points(run_point, todo, args.jobs, labels)))
    replicates = method_replicates(results)
    rows = tables.summarize(replicates, {m: list(args.seeds) for m in replicates})
    per_action = tables.per_action_means(replicates)
    bench = compose_config(["experiment=stickworld"]).eval_suite
    header = (f"Command: `{command}`\n\n{len(args.actions)} held-out actions x {len(args.seeds)} training seed(s); "
              f"a replicate is one (action, evaluation seed), averaged over {len(bench.actors)} actors x "
              f"{len(bench.templates)} prompts; mean ± 95% t-interval over replicates; {args.steps} optimizer steps "
              "per method. Judges: stickworld/data/judges.safetensors.")
    tables.write(args.out, rows, per_action, header)
    for action in args.grid_actions:
        if action in run_dirs:
            write_grid(args.out, action, run_dirs[action], bench, exemplar_dir(action, drawn))
    (args.out / "results.json").write_text(json.dumps(
        {"command": command, "rows": rows, "per_action": per_action,
         # this invocation only: points a resumed sweep skipped cost nothing here
         "seconds": round(time.time() - start)}, indent=2) + "\n")
    print((args.out / "table.md").read_text())
    print(f"Wrote {args.out}/table.md, table.csv, per_action.md, results.json and "
          + ", ".join(f"grid_{a}.png" for a in args.grid_actions if a in run_dirs))
    return args.out / "table.md"


if __name__ == "__main__":
    with user_errors():
        main()
