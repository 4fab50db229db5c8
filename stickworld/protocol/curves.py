"""Action accuracy against leakage over training budgets, and leakage compared at matched accuracy.

A row that trains longer renders the action more often and leaks more of the exemplars' actor, so leakage read at one
budget mixes the two. Here each row's curve (its metrics averaged over the (action, training seed) units at each
budget) is interpolated at accuracy levels every row reaches, and each row's leakage there is compared with a reference
row's, with a bootstrap interval over units (the same units drawn for both rows, every budget).
"""

from __future__ import annotations

import numpy as np

LEAKAGE = ("leakage", "leakage_clip")
METRICS = ("action_correct", *LEAKAGE)
Replicates = dict[int, dict[str, dict[tuple, dict]]]  # budget -> row -> (action, seed) -> metric means


def curve(replicates: Replicates, row: str, units: list[tuple] | None = None) -> list[dict]:
    """The row's metrics per budget, averaged over ``units`` (repeats count; default: every unit it has)."""
    points = []
    for budget in sorted(replicates):
        by = replicates[budget].get(row, {})
        keys = list(by) if units is None else [u for u in units if u in by]
        if keys:
            points.append({"method": row, "steps": budget,
                           **{m: float(np.mean([by[k][m] for k in keys])) for m in METRICS}})
    return points


def at_accuracy(points: list[dict], level: float, metric: str) -> float:
    """``metric`` linearly interpolated at Action acc. ``level`` along the curve; NaN outside the curve's range (no
    extrapolation)."""
    points = sorted(points, key=lambda p: p["action_correct"])
    acc = [p["action_correct"] for p in points]
    if not points or not acc[0] <= level <= acc[-1]:
        return float("nan")
    return float(np.interp(level, acc, [p[metric] for p in points]))


def shared_levels(curves: dict[str, list[dict]], count: int = 3) -> list[float]:
    """``count`` accuracy levels strictly inside the range every curve covers (none when the ranges do not
    overlap)."""
    low = max(min(p["action_correct"] for p in c) for c in curves.values())
    high = min(max(p["action_correct"] for p in c) for c in curves.values())
    return [float(x) for x in np.linspace(low, high, count + 2)[1:-1]] if high > low else []


def matched(replicates: Replicates, rows: list[str], reference: str = "twinact", count: int = 3, reps: int = 2000,
            seed: int = 0) -> list[dict]:
    """Each row's leakage at accuracy levels every row reaches, and its difference to ``reference``'s there.

    Returns:
        One dict per (row, level, metric): ``value`` (the row's interpolated leakage), ``difference`` (row minus
        reference) with ``ci95`` (percentile bootstrap over the reference's units; ``draws`` is the fraction of
        resamples in which both curves reached the level, the interval is None below one half).
    """
    curves = {r: curve(replicates, r) for r in rows}
    if reference not in rows or any(len(c) < 2 for c in curves.values()):
        return []
    levels = shared_levels(curves, count)
    units = sorted({u for by_row in replicates.values() for u in by_row.get(reference, {})})
    rng = np.random.default_rng(seed)
    draws = [[units[i] for i in rng.integers(0, len(units), len(units))] for _ in range(reps)]
    resampled = [{r: curve(replicates, r, d) for r in rows} for d in draws]
    out = []
    for row in rows:
        for level in levels:
            for metric in LEAKAGE:
                value, ref = (at_accuracy(curves[r], level, metric) for r in (row, reference))
                entry = {"method": row, "action_correct": level, "metric": metric, "value": value}
                if row != reference:
                    diffs = np.array([at_accuracy(c[row], level, metric) - at_accuracy(c[reference], level, metric)
                                      for c in resampled])
                    finite = diffs[np.isfinite(diffs)]
                    share = len(finite) / reps
                    entry.update(reference=reference, difference=value - ref, draws=share,
                                 ci95=[float(x) for x in np.percentile(finite, [2.5, 97.5])] if share >= 0.5 else None)
                out.append(entry)
    return out


def write_matched(path, entries: list[dict]) -> None:
    """``curves.md``: the matched-accuracy table."""
    lines = ["Leakage at matched Action acc.: each row's curve over budgets interpolated at accuracy levels every row "
             "reaches; difference to the reference row with a 95% percentile-bootstrap interval over (action, "
             "training seed) units.", "",
             "| method | Action acc. | metric | leakage | minus reference | 95% CI | draws reaching it |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in entries:
        diff = f"{e['difference']:+.3f}" if "difference" in e else "(reference)"
        ci = f"[{e['ci95'][0]:+.3f}, {e['ci95'][1]:+.3f}]" if e.get("ci95") else "-"
        draws = f"{e['draws']:.2f}" if "draws" in e else "-"
        lines.append(f"| {e['method']} | {e['action_correct']:.3f} | {e['metric']} | {e['value']:.3f} | {diff} | "
                     f"{ci} | {draws} |")
    if not entries:
        lines.append("| (the rows' accuracy ranges do not overlap, or a row has fewer than two budgets) | | | | | | |")
    path.write_text("\n".join(lines) + "\n")


def plot(points: list[dict], levels: list[float], path) -> list[list[str]]:
    """Action accuracy against leakage per row, one marker per budget, read by the judges (left) and by CLIP
    (right); the matched levels as dotted lines. Returns each panel's curve labels."""
    from twinact.plots import plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, metric, name in zip(axes, LEAKAGE, ("Leakage (judges)", "Leakage (CLIP)")):
        for row in sorted({p["method"] for p in points}):
            mine = sorted((p for p in points if p["method"] == row), key=lambda p: p["steps"])
            ax.plot([p["action_correct"] for p in mine], [p[metric] for p in mine], marker="o", label=row)
            for p in mine:
                ax.annotate(str(p["steps"]), (p["action_correct"], p[metric]), fontsize=7)
        for level in levels:
            ax.axvline(level, color="grey", linestyle=":", linewidth=0.8)
        ax.set(xlabel="Action acc. (higher better)", ylabel=f"{name} (lower better)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Accuracy vs leakage per training budget (labels: optimizer steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [[line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] for ax in axes]
