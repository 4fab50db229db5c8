"""The StickWorld method comparison: aggregation, settings guard, and (with the shipped model) an end-to-end sweep."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.utils import instantiate
from PIL import Image, ImageFont

from stickworld.protocol import compare_methods, tables
from stickworld.world.exemplars import exemplar_dir
from tests.test_stickworld_model import needs_model
from twinact.config.compose import compose_config
from twinact.errors import TwinActError
from twinact.eval.scorers import ScoredRun


def _result(values: dict[int, list[float]]) -> dict:
    images = [{"seed": seed, "s_action": v, "s_actor": 1 - v, "leakage": v / 2} for seed, vs in values.items()
              for v in vs]
    return {"per_image": images, "aggregate": {"s_action": sum(i["s_action"] for i in images) / len(images)}}


def test_summary_averages_each_action_seed_replicate_then_across_replicates():
    results = {("a", "twinact", 0): _result({0: [0.2, 0.4], 1: [0.6, 0.6]}),
               ("b", "twinact", 0): _result({0: [1.0, 1.0], 1: [0.0, 0.2]}),
               ("a", "lora", 0): _result({0: [0.5]})}
    replicates = compare_methods.method_replicates(results)
    twinact, lora = tables.summarize(replicates, {"twinact": [0], "lora": [0]})
    assert twinact["replicates"] == 4 and lora["replicates"] == 1
    assert twinact["s_action"] == pytest.approx((0.3 + 0.6 + 1.0 + 0.1) / 4)
    assert twinact["leakage"] == pytest.approx(twinact["s_action"] / 2)
    assert twinact["s_action_ci95"] > 0
    assert lora["s_action"] == pytest.approx(0.5) and "s_action_ci95" not in lora  # one replicate: no interval
    per_action = tables.per_action_means(replicates)
    assert per_action["a"]["twinact"]["s_action"] == pytest.approx(0.45) and "lora" not in per_action["b"]


def test_tables_name_the_command_every_method_and_n(tmp_path):
    replicates = compare_methods.method_replicates({("a", "twinact", 0): _result({0: [0.5], 1: [0.7]}),
                                                    ("a", "lora", 0): _result({0: [0.5]})})
    rows = tables.summarize(replicates, {"twinact": [0], "lora": [0]})
    header = "Command: `python -m stickworld.protocol.compare_methods`"
    tables.write(tmp_path, rows, tables.per_action_means(replicates), header)
    text = (tmp_path / "table.md").read_text()
    assert "python -m stickworld.protocol.compare_methods" in text and "n (replicates)" in text
    assert "| twinact | 0.600 ± " in text and "| 2 | 1 |" in text
    assert "| lora | 0.500 |" in text and "± 0.000" not in text
    assert (tmp_path / "table.csv").read_text().startswith("method,")


def test_an_output_folder_of_other_settings_is_refused(tmp_path):
    compare_methods.check_settings(tmp_path, {"steps": 400, "overrides": []})
    compare_methods.check_settings(tmp_path, {"steps": 400, "overrides": []})  # same settings: resume
    with pytest.raises(TwinActError, match="other settings"):
        compare_methods.check_settings(tmp_path, {"steps": 200, "overrides": []})


def test_each_method_gets_the_same_budget_split_like_its_config(tmp_path):
    for method, first in (("twinact", 0.25), ("textual_inversion", 1.0), ("lora", 0.0)):
        ov = compare_methods.point_overrides("backflip", method, 0, 40, tmp_path, [])
        s1 = int(next(o for o in ov if o.startswith("method.stage1.steps=")).split("=")[1])
        s2 = int(next(o for o in ov if o.startswith("method.stage2.steps=")).split("=")[1])
        assert s1 + s2 == 40 and s1 == round(40 * first)
        cfg = compose_config(ov)
        assert cfg.model.name == "stickworld" and cfg.action.name == "backflip" and cfg.resume == "auto"


@needs_model
def test_end_to_end_sweep_writes_table_and_grid(tmp_path):
    out = tmp_path / "bench"
    extra = [f"cache_dir={tmp_path / 'cache'}", "logger=none", "data.batch_size=2", "eval_suite.seeds=[0,1]",
             "eval_suite.steps=3", "eval_suite.templates=[\"{actor} {action}\"]", "sample_at_end=false"]
    compare_methods.main(["--out", str(out), "--actions", "three_point_landing", "--methods", "twinact",
                    "textual_inversion", "--steps", "4"] + extra)
    table = (out / "table.md").read_text()
    assert "| twinact |" in table and "| textual_inversion |" in table
    assert (out / "grid_three_point_landing.png").is_file()
    metrics = json.loads((out / "runs/three_point_landing/twinact/seed0/eval/metrics.json").read_text())
    assert {"s_action", "action_correct", "s_actor", "leakage"} <= set(metrics["aggregate"])
    assert "Action acc." in table
    first_seconds = json.loads((out / "results.json").read_text())["seconds"]
    assert first_seconds >= 1  # two points trained and evaluated
    assert len(metrics["per_image"]) == 8 * 2  # eight actors x two seeds
    # A rerun skips the finished points and rewrites the same table.
    compare_methods.main(["--out", str(out), "--actions", "three_point_landing", "--methods", "twinact",
                    "textual_inversion", "--steps", "4"] + extra)
    assert (out / "table.md").read_text() == table
    assert json.loads((out / "results.json").read_text())["seconds"] < first_seconds  # skipped, not retrained


def test_stickworld_scorer_refuses_an_action_stickworld_does_not_have(tmp_path):
    run = ScoredRun(action="three_point_landing_photos", image_dir=str(tmp_path), clip_vision="tiny")
    suite = compose_config(["experiment=stickworld"]).eval_suite
    scorer = instantiate(suite.scorer)
    with pytest.raises(TwinActError, match="action.name=<one of three_point_landing"):
        scorer([], [], suite, run, [])


def test_the_demos_console_in_a_file_shows_each_points_progress_and_no_library_notice(tmp_path):
    """`make demo`'s command, shortened: points in two processes, the output going to a file, a fresh space cache."""
    import subprocess
    import sys

    from conftest import REPO

    from twinact.runs.noise import NOISE

    out = tmp_path / "console.txt"
    cmd = [sys.executable, "-m", "stickworld.protocol.compare_methods", "--out", str(tmp_path / "demo"), "--actions",
           "superhero_flight", "--methods", "twinact", "ti_lora", "--steps", "2", "--jobs", "2", "--grid-actions",
           "superhero_flight", "--", "data.batch_size=2", f"cache_dir={tmp_path / 'cache'}", "logger=none",
           "eval_suite.seeds=[0]", "eval_suite.steps=2"]
    env = {**{k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}, "OMP_NUM_THREADS": "1"}
    with open(out, "w") as f:
        done = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=600)
    text = out.read_text()
    assert done.returncode == 0, text[-2000:]
    for tag in ("[1/2]", "[2/2]"):  # each point's training steps and evaluation renders, tagged with the point
        assert f"{tag} step 2/2" in text and f"{tag} images 16/16" in text, text
    assert "| twinact |" in text and "grid_superhero_flight.png" in text
    for noise in ("Seed set to", "design check", "%|", *(start for _, start in NOISE)):
        assert noise not in text, noise


def test_grid_labels_fit_beside_the_images(tmp_path):
    """Every row label, the benchmark variants' longest included, ends left of the first image column."""
    actors = [SimpleNamespace(id="robot", name="a robot"), SimpleNamespace(id="fox", name="a fox")]
    bench = SimpleNamespace(actors=actors, seeds=[0], templates=["{actor} {action}"])
    run = tmp_path / "run"
    (run / "eval" / "images").mkdir(parents=True)
    shots = []
    for a in actors:
        Image.new("RGB", (64, 64), "gray").save(run / "eval" / "images" / f"{a.id}.png")
        shots.append({"actor": a.name, "template": 0, "seed": 0, "file": f"{a.id}.png"})
    (run / "eval" / "metrics.json").write_text(json.dumps({"per_image": shots, "aggregate": {"action_correct": 0.5}}))
    rows = {m: run for m in compare_methods.DISPLAY} | {"a_row_without_a_display_name_that_is_long": run}
    exemplars = exemplar_dir("three_point_landing", None)
    grid = Image.open(compare_methods.write_grid(tmp_path, "three_point_landing", rows, bench, exemplars, tile=32))
    columns = max(len(actors), len(list(Path(exemplars).glob("*.png"))))
    font = ImageFont.load_default(size=18)
    longest = max(font.getlength(compare_methods.DISPLAY.get(m, m)) for m in rows)
    assert grid.width - columns * 32 >= 6 + longest
