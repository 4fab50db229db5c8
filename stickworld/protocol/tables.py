"""The tables of a StickWorld sweep: one set of metrics, rows of mean ± 95% interval over units, per-action means.

The benchmark (:mod:`stickworld.protocol.benchmark`) and the method comparison
(:mod:`stickworld.protocol.compare_methods`) both write through here, so their tables have the same columns, the same
interval and the same unit count beside it. A *unit* is what an interval is over: the benchmark's is one (action,
training seed), the comparison's one (action, evaluation seed); each is the mean of a metric over that unit's images. A
row of one unit has no interval."""

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


def unit_means(per_image: list[dict]) -> dict[str, float]:
    """One unit: each metric's mean over the images that carry it."""
    keys = {k for img in per_image for k, v in img.items() if isinstance(v, (int, float))} - {"seed", "template"}
    return {k: float(np.mean([img[k] for img in per_image if k in img])) for k in sorted(keys)}


def summarize(units: dict[str, dict[tuple, dict]], seeds: dict[str, list[int]]) -> list[dict]:
    """Rows: each metric's mean and 95% t-interval over the row's units (no interval for one unit), the unit count
    and the row's training seeds."""
    rows = []
    for row, by_unit in units.items():
        out = {"method": row, "training_seeds": seeds[row], "units": len(by_unit)}
        for metric, _, _ in METRICS:
            values = [u[metric] for u in by_unit.values() if metric in u]
            if values:
                out[metric] = float(np.mean(values))
                if len(values) > 1:
                    out[f"{metric}_ci95"] = mean_ci95(values)[1]
        rows.append(out)
    return rows


def per_action_means(units: dict[str, dict[tuple, dict]]) -> dict[str, dict[str, dict[str, float]]]:
    """action -> row -> the mean of :data:`PER_ACTION` metrics over that action's units."""
    table: dict = {}
    for row, by_unit in units.items():
        for action in sorted({a for a, _ in by_unit}):
            us = [u for (a, _), u in by_unit.items() if a == action]
            table.setdefault(action, {})[row] = {m: float(np.mean([u[m] for u in us if m in u]))
                                                 for m in PER_ACTION if any(m in u for u in us)}
    return table


def cell(row: dict, metric: str) -> str:
    if metric not in row:
        return "n/a"
    if f"{metric}_ci95" not in row:
        return f"{row[metric]:.3f}"
    return f"{row[metric]:.3f} ± {row[metric + '_ci95']:.3f}"


def write(out: Path, rows: list[dict], per_action: dict, header: str) -> None:
    """``table.md`` (``header``, then a row per method: mean ± interval, units n, training seeds), ``table.csv`` and
    ``per_action.md``."""
    cols = [(m, label, better) for m, label, better in METRICS if any(m in r for r in rows)]
    head = " | ".join(f"{lab} ({b} better)" for _, lab, b in cols)
    lines = [header, "", f"| row | {head} | n (units) | seeds |",
             "|" + " --- |" * (len(cols) + 3)]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(cell(r, m) for m, _, _ in cols)
                     + f" | {r['units']} | {len(r['training_seeds'])} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}, key=lambda k: (k != "method", k)))
        writer.writeheader()
        writer.writerows({**r, "training_seeds": " ".join(map(str, r["training_seeds"]))} for r in rows)
    names = [r["method"] for r in rows]
    lines = ["Action acc. / S_Action per action (mean over units)", "", "| action | " + " | ".join(names) + " |",
             "|" + " --- |" * (len(names) + 1)]
    for action, by_row in per_action.items():
        lines.append(f"| {action} | " + " | ".join(
            " / ".join(f"{by_row[n][m]:.2f}" if m in by_row.get(n, {}) else "n/a" for m in PER_ACTION[:2])
            for n in names) + " |")
    (out / "per_action.md").write_text("\n".join(lines) + "\n")
