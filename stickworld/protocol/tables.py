"""The tables of a StickWorld sweep: one set of metrics, rows of mean ± 95% interval over replicates,
per-action means.

The benchmark (:mod:`stickworld.protocol.benchmark`) and the method comparison
(:mod:`stickworld.protocol.compare_methods`) both write through here, so their tables have the same columns, the same
interval and the same replicate count beside it. A *replicate* is what an interval is over: the benchmark's is one
(action, training seed), the comparison's one (action, evaluation seed); each is the mean of a metric over that
replicate's images. A row of one replicate has no interval."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from twinact.eval.stats import mean_ci95

# (key, label, which way is better), in table order.
METRICS = (("s_action", "S_Action", "higher"), ("action_correct", "Action acc.", "higher"),
           ("pose_distance", "pose distance", "lower"), ("error_arms", "arms error", "lower"),
           ("error_legs", "legs error", "lower"), ("error_torso", "torso error", "lower"),
           ("s_actor", "S_Actor", "higher"), ("s_actor_clip", "S_Actor (CLIP)", "higher"),
           ("leakage", "Leakage", "lower"), ("leakage_clip", "Leakage (CLIP)", "lower"))
PER_ACTION = ("action_correct", "s_action", "leakage")


def replicate_means(per_image: list[dict]) -> dict[str, float]:
    """One replicate: each metric's mean over the images that carry it."""
    keys = {k for img in per_image for k, v in img.items() if isinstance(v, (int, float))} - {"seed", "template"}
    return {k: float(np.mean([img[k] for img in per_image if k in img])) for k in sorted(keys)}


def summarize(replicates: dict[str, dict[tuple, dict]], seeds: dict[str, list[int]]) -> list[dict]:
    """Rows: each metric's mean and 95% t-interval over the row's replicates (no interval for one replicate), the
    replicate count and the row's training seeds."""
    rows = []
    for row, by_replicate in replicates.items():
        out = {"method": row, "training_seeds": seeds[row], "replicates": len(by_replicate)}
        for metric, _, _ in METRICS:
            values = [rep[metric] for rep in by_replicate.values() if metric in rep]
            if values:
                out[metric] = float(np.mean(values))
                if len(values) > 1:
                    out[f"{metric}_ci95"] = mean_ci95(values)[1]
        rows.append(out)
    return rows


def per_action_means(replicates: dict[str, dict[tuple, dict]]) -> dict[str, dict[str, dict[str, float]]]:
    """action -> row -> the mean of :data:`PER_ACTION` metrics over that action's replicates."""
    table: dict = {}
    for row, by_replicate in replicates.items():
        for action in sorted({a for a, _ in by_replicate}):
            reps = [rep for (a, _), rep in by_replicate.items() if a == action]
            table.setdefault(action, {})[row] = {m: float(np.mean([rep[m] for rep in reps if m in rep]))
                                                 for m in PER_ACTION if any(m in rep for rep in reps)}
    return table


def cell(row: dict, metric: str) -> str:
    if metric not in row:
        return "n/a"
    if f"{metric}_ci95" not in row:
        return f"{row[metric]:.3f}"
    return f"{row[metric]:.3f} ± {row[metric + '_ci95']:.3f}"


def write(out: Path, rows: list[dict], per_action: dict, header: str) -> None:
    """``table.md`` (``header``, then a row per method: mean ± interval, replicates n, training seeds),
    ``table.csv`` and ``per_action.md``."""
    cols = [(m, label, better) for m, label, better in METRICS if any(m in r for r in rows)]
    head = " | ".join(f"{lab} ({b} better)" for _, lab, b in cols)
    lines = [header, "", f"| row | {head} | n (replicates) | seeds |",
             "|" + " --- |" * (len(cols) + 3)]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(cell(r, m) for m, _, _ in cols)
                     + f" | {r['replicates']} | {len(r['training_seeds'])} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}, key=lambda k: (k != "method", k)))
        writer.writeheader()
        writer.writerows({**r, "training_seeds": " ".join(map(str, r["training_seeds"]))} for r in rows)
    names = [r["method"] for r in rows]
    lines = ["Action acc. / S_Action per action (mean over replicates)", "", "| action | " + " | ".join(names) + " |",
             "|" + " --- |" * (len(names) + 1)]
    for action, by_row in per_action.items():
        lines.append(f"| {action} | " + " | ".join(
            " / ".join(f"{by_row[n][m]:.2f}" if m in by_row.get(n, {}) else "n/a" for m in PER_ACTION[:2])
            for n in names) + " |")
    (out / "per_action.md").write_text("\n".join(lines) + "\n")
