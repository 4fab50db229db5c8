"""Accuracy/leakage curves: interpolation at matched accuracy and its paired interval over units."""

from __future__ import annotations

import math

import pytest

from stickworld.protocol import curves


def _replicates(leak_offset: float, units: int = 6) -> dict:
    """Two rows whose accuracy grows with the budget; ``leaky`` leaks ``leak_offset`` more at every accuracy."""
    out = {}
    for budget, acc in ((100, 0.1), (400, 0.4), (1600, 0.7)):
        out[budget] = {row: {(f"a{u}", 0): {"action_correct": acc + 0.01 * u + shift,
                                             "leakage": 0.05 + 0.1 * (acc + 0.01 * u) + extra,
                                             "leakage_clip": 0.2 + extra}
                             for u in range(units)}
                       for row, shift, extra in (("twinact", 0.0, 0.0), ("leaky", 0.05, leak_offset))}
    return out


def test_interpolation_stays_inside_the_curve():
    points = [{"action_correct": 0.2, "leakage": 0.1}, {"action_correct": 0.6, "leakage": 0.3}]
    assert curves.at_accuracy(points, 0.4, "leakage") == pytest.approx(0.2)
    assert math.isnan(curves.at_accuracy(points, 0.7, "leakage")) and math.isnan(curves.at_accuracy([], 0.4, "leakage"))


def test_levels_lie_inside_every_rows_range():
    c = {"a": [{"action_correct": 0.1}, {"action_correct": 0.5}],
         "b": [{"action_correct": 0.3}, {"action_correct": 0.9}]}
    levels = curves.shared_levels(c, 3)
    assert levels == pytest.approx([0.35, 0.4, 0.45])
    assert curves.shared_levels({"a": c["a"], "b": [{"action_correct": 0.6}, {"action_correct": 0.9}]}) == []


def test_a_row_that_leaks_more_at_the_same_accuracy_is_found_with_an_interval():
    entries = curves.matched(_replicates(0.1), ["twinact", "leaky"], reps=300)
    mine = [e for e in entries if e["method"] == "leaky"]
    assert len(mine) == 3 * 2 and all(e["reference"] == "twinact" for e in mine)
    for e in mine:
        low, high = e["ci95"]
        assert e["difference"] == pytest.approx(0.1, abs=0.01) and 0.05 < low <= high < 0.15, e
    assert all("difference" not in e for e in entries if e["method"] == "twinact")
    # the same leakage at each accuracy: no difference
    for e in curves.matched(_replicates(0.0), ["twinact", "leaky"], reps=300):
        if e["method"] == "leaky":
            assert abs(e["difference"]) < 0.01 and e["ci95"][0] <= 0.005 and e["ci95"][1] >= -0.005


def test_without_a_shared_range_or_a_second_budget_nothing_is_matched(tmp_path):
    one_budget = {100: _replicates(0.1)[100]}
    assert curves.matched(one_budget, ["twinact", "leaky"]) == []
    curves.write_matched(tmp_path / "curves.md", [])
    assert "do not overlap" in (tmp_path / "curves.md").read_text()


def test_the_plot_has_one_line_per_row_and_the_table_one_line_per_entry(tmp_path):
    reps = _replicates(0.1)
    points = [p for r in ("twinact", "leaky") for p in curves.curve(reps, r)]
    assert [p["steps"] for p in points] == [100, 400, 1600] * 2
    entries = curves.matched(reps, ["twinact", "leaky"], reps=50)
    panels = curves.plot(points, sorted({e["action_correct"] for e in entries}), tmp_path / "curves.png")
    assert panels == [["leaky", "twinact"], ["leaky", "twinact"]]  # judges' leakage, CLIP's
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    curves.write_matched(tmp_path / "curves.md", entries)
    assert len((tmp_path / "curves.md").read_text().splitlines()) == 4 + len(entries)
