"""Compare runs: swept hyperparameters against final metrics, mean and 95% CI over seeds, as a table and a plot.

Reads each run dir's own files (`config.yaml`, `eval/metrics.json` when evaluated, else the training log), so it
works offline; `source=wandb` reads the same fields from the W&B API for synced runs.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from omegaconf import OmegaConf

from twinact.config.compose import flatten
from twinact.errors import TwinActError
from twinact.eval.stats import mean_ci95
from twinact.runs.commands import override
from twinact.runs.files import RunFiles
from twinact.runs.rundir import is_finished

IGNORED = ("run_dir", "run_name", "ckpt_path", "cache_dir", "seed", "callbacks.", "logger.", "trainer.enable_progress")


def training_metrics(run_dir: Path, tail: float = 0.2) -> dict:
    """Final training loss: mean of `train/mse` over the last `tail` fraction of logged steps (CSV logger)."""
    values = []
    for path in sorted(run_dir.glob("logs/*/metrics.csv")):
        with open(path) as f:
            values += [float(r["train/mse"]) for r in csv.DictReader(f) if r.get("train/mse")]
    if not values:
        return {}
    last = values[-max(1, int(len(values) * tail)):]
    return {"final_train_mse": sum(last) / len(last)}


def run_status(run: Path) -> str | None:
    """Why a local run is not a result (yet): failed or unfinished; None for a finished one."""
    if RunFiles(run).failed.is_file():
        reason = RunFiles(run).failed.read_text().strip().splitlines()
        return f"failed ({reason[0]})" if reason else "failed"
    if is_finished(run):
        return None
    cfg = OmegaConf.load(RunFiles(run).config)
    m = cfg.method
    total = m.stage1.steps + (m.stage2.steps if m.get("lora") else 0)
    steps = [int(r["step"]) for path in run.glob("logs/*/metrics.csv")
             for r in csv.DictReader(path.read_text().splitlines()) if r.get("step")]
    return f"unfinished (last logged step {max(steps) + 1} of {total})" if steps else "unfinished (no export)"


def load_local(run_dirs: list[Path], include: str = "finished") -> tuple[list[dict], list[tuple[str, str]]]:
    """One record per run: flattened config, metrics (evaluation metrics win over training ones) and `status`
    (`run_status`); and the runs left out, with why (`include="all"` keeps failed and unfinished runs)."""
    records, notes = [], []
    for run in run_dirs:
        if not RunFiles(run).config.is_file():
            notes.append((str(run), "not a twinact run (no config.yaml)"))
            continue
        status = run_status(run)
        if status and include == "finished":
            notes.append((str(run), status))
            continue
        config = flatten(OmegaConf.to_container(OmegaConf.load(RunFiles(run).config), resolve=False))
        metrics = training_metrics(run)
        if RunFiles(run).metrics.is_file():
            metrics.update(json.loads(RunFiles(run).metrics.read_text()).get("aggregate", {}))
        records.append({"run": str(run), "config": config, "metrics": metrics, "status": status})
    return records, notes


def load_wandb(run_group: str, project: str, entity: str | None = None, api=None,
               include: str = "finished") -> tuple[list[dict], list[tuple[str, str]]]:
    """The same records and notes from W&B for runs of `run_group` that were synced (`api`: a `wandb.Api`, for
    tests); a run W&B does not mark finished (running, crashed, failed) counts as unfinished."""
    path = f"{entity}/{project}" if entity else project
    try:
        if api is None:
            import wandb  # an optional dependency (pip install 'twinact[wandb]')

            api = wandb.Api(timeout=20)
        runs = list(api.runs(path, filters={"group": run_group}))
    except ImportError:
        raise TwinActError("compare.py source=wandb needs wandb: pip install 'twinact[wandb]'.") from None
    except Exception as err:  # no key, no network, unknown project: wandb raises many types
        raise TwinActError(
            f"Could not read W&B project {path!r} ({type(err).__name__}: {str(err).splitlines()[0][:160]}). Log in "
            f"with `wandb login`, upload offline runs with `wandb sync runs/{run_group}/*/wandb/offline-run-*`, or "
            f"compare the local files instead: python compare.py {override('run_group', run_group)} source=local."
        ) from None
    records, notes = [], []
    for run in runs:
        state = getattr(run, "state", "finished")
        status = None if state == "finished" else f"unfinished (W&B state {state})"
        if status and include == "finished":
            notes.append((run.name, status))
            continue
        metrics = {k: v for k, v in dict(run.summary).items() if isinstance(v, (int, float)) and not k.startswith("_")}
        records.append({"run": run.name, "config": flatten(dict(run.config)), "metrics": metrics, "status": status})
    return records, notes


def swept_keys(records: list[dict]) -> list[str]:
    """Config keys whose values differ between runs (seeds and bookkeeping excluded)."""
    keys = sorted({k for r in records for k in r["config"]})
    varying = [k for k in keys if len({json.dumps(r["config"].get(k), default=str) for r in records}) > 1]
    return [k for k in varying if not k.startswith(IGNORED)]


def summarize(records: list[dict]) -> tuple[list[str], list[str], list[dict]]:
    """Group runs by swept values (seeds pooled): (swept keys, metric names, rows). A row holds `n` (its runs) and per
    metric the mean, `<metric>_n` (runs that have it) and `<metric>_ci95` (None for one run: no interval)."""
    if not records:
        raise TwinActError("No runs to compare: give run_group=<name> (under runs/) or runs=[<run dir>, ...].")
    keys = swept_keys(records)
    metric_names = sorted({m for r in records for m in r["metrics"]})
    groups = defaultdict(list)
    for r in records:
        groups[tuple(json.dumps(r["config"].get(k), default=str) for k in keys)].append(r)
    rows = []
    for values, members in sorted(groups.items()):
        row = {k: json.loads(v) for k, v in zip(keys, values)} | {"n": len(members)}
        for m in metric_names:
            got = [r["metrics"][m] for r in members if m in r["metrics"]]
            if got:
                mean, ci = mean_ci95(got)
                row[m], row[f"{m}_n"], row[f"{m}_ci95"] = mean, len(got), ci if len(got) > 1 else None
        rows.append(row)
    return keys, metric_names, rows


def missing_metrics(records: list[dict], metrics: list[str]) -> list[tuple[str, str]]:
    """(run, note) for every included run that lacks some metric: it is left out of those columns."""
    notes = []
    for r in records:
        lacking = [m for m in metrics if m not in r["metrics"]]
        if lacking:
            notes.append((r["run"], f"missing {', '.join(lacking)} (left out of that column only)"))
    return notes


def _cell(row: dict, metric: str) -> str:
    if metric not in row:
        return ""
    ci = row[f"{metric}_ci95"]
    interval = f" ± {ci:.4f}" if ci is not None else ""
    return f"{row[metric]:.4f}{interval} (n={row[metric + '_n']})"


def write_outputs(keys: list[str], metrics: list[str], rows: list[dict], out_dir: Path,
                  left_out: list[tuple[str, str]] = (), unfinished: list[tuple[str, str]] = ()) -> Path:
    """compare.md (the table, then what it includes and leaves out), compare.csv and compare.png (each metric
    against the first numeric swept key, a line per method)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    head = keys + ["n"] + metrics
    lines = ["Mean ± 95% t-interval over the runs of a row (seeds pooled); n: runs with that value (no interval for "
             "one).", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join([str(row.get(k)) for k in keys + ["n"]] + [_cell(row, m) for m in metrics])
                     + " |")
    count = sum(r["n"] for r in rows)
    lines += ["", f"Included: {count} run{'s' if count != 1 else ''}" + (f", {len(unfinished)} of them not finished:"
                                                                       if unfinished else ", all finished.")]
    lines += [f"- {run}: {why}" for run, why in unfinished]
    if left_out:
        lines += ["", "Left out:"] + [f"- {run}: {why}" for run, why in left_out]
    (out_dir / "compare.md").write_text("\n".join(lines) + "\n")
    with open(out_dir / "compare.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=head + [f"{m}_{s}" for m in metrics for s in ("ci95", "n")])
        writer.writeheader()
        writer.writerows(rows)
    _plot(keys, metrics, rows, out_dir / "compare.png")
    return out_dir


def _plot(keys: list[str], metrics: list[str], rows: list[dict], path: Path) -> None:
    from twinact.plots import plt  # matplotlib takes ~1 s to import; only plotting pays it

    numeric = [k for k in keys if k != "method.name" and all(isinstance(r.get(k), (int, float)) for r in rows)]
    x_key = numeric[0] if numeric else None
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(5 * max(1, len(metrics)), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        lines = defaultdict(list)
        for i, row in enumerate(rows):
            if metric in row:
                ci = row[metric + "_ci95"] or 0.0  # one run: a point without a bar
                lines[row.get("method.name", "runs")].append((row.get(x_key, i), row[metric], ci))
        for method, pts in sorted(lines.items()):
            pts.sort()
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                        label=str(method))
        ax.set(xlabel=x_key or "run", ylabel=metric, title=metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def runs_of_group(root: Path, run_group: str | None) -> list[Path]:
    """Run dirs under `root` whose recorded config has `run_group` (wherever they were written); None: every run."""
    found = []
    for path in sorted(root.glob(f"**/{RunFiles(root).config.name}")):
        if path.parent.name == "_compare" or not RunFiles(path.parent).meta.is_file():  # twinact runs record both
            continue
        if run_group is None or OmegaConf.load(path).get("run_group") == run_group:
            found.append(path.parent)
    return found


def compare(run_group: str | None = None, runs: list[str] | None = None, source: str = "local",
            root: str = "runs", out_dir: str | None = None, project: str = "twinact",
            entity: str | None = None, include: str = "finished") -> tuple[str, Path]:
    """Build the comparison of finished runs (`include="all"`: also failed and unfinished ones); returns (markdown
    table with what it included and left out, output dir)."""
    if include not in ("finished", "all"):
        raise TwinActError(f"include={include!r} is not finished or all.")
    if source == "wandb":
        records, notes = load_wandb(run_group, project, entity, include=include)
    elif source == "local":
        dirs = [Path(r) for r in runs] if runs else runs_of_group(Path(root), run_group)
        records, notes = load_local(dirs, include)
    else:
        raise TwinActError(f"source={source!r} is not 'local' or 'wandb'.")
    if not records and notes:
        shown = "; ".join(f"{run}: {why}" for run, why in notes[:4]) + (" ..." if len(notes) > 4 else "")
        raise TwinActError(f"No finished run to compare ({shown}). Finish them (resume=auto), or tabulate them as "
                           "they are with include=all.")
    keys, metrics, rows = summarize(records)
    unfinished = [(r["run"], r["status"]) for r in records if r.get("status")]
    out = write_outputs(keys, metrics, rows, Path(out_dir or Path(root) / (run_group or "compare") / "_compare"),
                        notes + missing_metrics(records, metrics), unfinished)
    return (out / "compare.md").read_text(), out
