"""The StickWorld benchmark: replicates, paired intervals, the rows' settings, and one small end-to-end run."""

from __future__ import annotations

import json

import pytest
from conftest import one_thread

from stickworld.protocol import benchmark, tables
from twinact.config.compose import compose_config
from twinact.eval.stats import bootstrap_ci95

_one_thread = pytest.fixture(scope="module", autouse=True)(one_thread)


def test_a_replicate_averages_its_images_and_rows_average_replicates():
    images = [{"seed": 0, "template": 0, "s_action": 0.2, "leakage": 0.1},
              {"seed": 1, "template": 1, "s_action": 0.6}]
    assert tables.replicate_means(images) == {"s_action": pytest.approx(0.4), "leakage": pytest.approx(0.1)}
    replicates = {"twinact": {("a", 0): {"s_action": 0.4, "action_correct": 0.5},
                              ("a", 1): {"s_action": 0.6, "action_correct": 1.0}},
                  benchmark.UPPER_BOUND: {("a", 0): {"s_action": 0.9, "action_correct": 1.0},
                                          ("a", 1): {"s_action": 0.9, "action_correct": 0.5}}}
    rows = benchmark.summarize(replicates, {"twinact": [0, 1], benchmark.UPPER_BOUND: []})
    assert rows[0]["method"] == "twinact" and rows[0]["replicates"] == 2 and rows[0]["training_seeds"] == [0, 1]
    assert rows[0]["s_action"] == pytest.approx(0.5) and rows[0]["s_action_ci95"] > 0
    # the bound of action a is its mean accuracy, 0.75: 0.5 / 0.75 and 1.0 / 0.75 on average
    assert rows[0]["action_correct_of_upper_bound"] == pytest.approx((0.5 + 1.0) / 2 / 0.75)


def test_paired_differences_use_shared_replicates_only():
    replicates = {"twinact": {(a, s): {"s_action": 0.5 + 0.1 * s} for a in "ab" for s in range(3)},
                  "lora": {(a, s): {"s_action": 0.3 + 0.1 * s} for a in "ab" for s in range(2)}}
    (pair,) = benchmark.paired(replicates, pairs=[("twinact", "lora"), ("twinact", "ti_lora")])
    assert (pair["a"], pair["b"], pair["metric"], pair["replicates"]) == ("twinact", "lora", "s_action", 4)
    assert pair["mean"] == pytest.approx(0.2) and pair["ci95"] == pytest.approx([0.2, 0.2])


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_replicates():
    rng_values = [0.1, 0.4, -0.2, 0.3, 0.0, 0.5]
    mean, (low, high) = bootstrap_ci95(rng_values)
    assert low < mean < high
    _, (low2, high2) = bootstrap_ci95(rng_values * 8)
    assert high2 - low2 < high - low


@pytest.mark.parametrize("row,check", [
    ("twinact_no_similarity", lambda c: c.method.similarity_weight == 0),
    ("twinact_random_basis", lambda c: c.action_space.basis == "random"),
    ("twinact_direct_coefficients", lambda c: c.method.coefficients == "direct"),
    ("twinact_pooled_space", lambda c: c.action_space.mode == "pooled"),
    ("twinact_released_init", lambda c: c.action_space.init_scale == 1.0 and c.method.max_norm is None),
    ("ti_lora_similarity", lambda c: c.method.name == "ti_lora" and c.method.similarity_weight > 0),
    ("twinact_appearance_free", lambda c: c.method.name == "twinact" and c.action_space.remove_appearance),
])
def test_each_row_trains_what_its_name_says_at_the_shared_budget(tmp_path, row, check):
    cfg = compose_config(benchmark.row_overrides(row, "cartwheel", 1, 800, 4, 2, tmp_path, []))
    assert check(cfg)
    assert cfg.method.stage1.steps + cfg.method.stage2.steps == 800
    assert cfg.data.batch_size * cfg.trainer.accumulate_grad_batches == 8
    assert cfg.seed == 1 and cfg.action.name == "cartwheel" and cfg.model.name == "stickworld"


def test_the_positive_control_learns_a_known_action_without_its_phrase(tmp_path):
    from stickworld.protocol.positive_control import prepare
    from stickworld.world.actions import KNOWN_ACTIONS
    from twinact.space.action_space import load_phrases

    overrides = prepare("handstand", tmp_path)
    cfg = compose_config(benchmark.row_overrides("positive_control", "handstand", 0, 8, 2, 1, tmp_path / "run",
                                                 overrides))
    assert cfg.action.name == "handstand" and cfg.method.name == "twinact"
    phrases = [p for _, p in load_phrases(cfg.action_space.phrases)]
    assert KNOWN_ACTIONS["handstand"].phrase not in phrases and len(phrases) == 92
    shots = sorted((tmp_path / "exemplars" / "handstand").glob("*.png"))
    assert len(shots) == 5 and str(tmp_path / "exemplars" / "handstand") == cfg.action.image_dir
    assert prepare("handstand", tmp_path) == overrides  # a rerun finds the same files


def test_each_variant_is_paired_with_what_it_varies():
    assert ("twinact", "ti_lora") in benchmark.PAIRS and ("twinact_appearance_free", "twinact") in benchmark.PAIRS
    assert ("twinact_no_similarity", "twinact") in benchmark.PAIRS
    assert ("ti_lora_similarity", "ti_lora") in benchmark.PAIRS
    assert all(a in benchmark.ROWS and b in benchmark.ROWS and a != b for a, b in benchmark.PAIRS)


def test_a_small_benchmark_writes_every_output_and_resumes(tmp_path):
    out = tmp_path / "bench"
    args = ["--out", str(out), "--actions", "dabbing", "--rows", "twinact", "ti_lora", "upper_bound",
            "positive_control", "--control-actions", "squatting",
            "--seeds", "0", "1", "--steps", "2", "--batch", "2", "--accumulate", "1",
            f"cache_dir={tmp_path / 'cache'}", "logger=none", "sample_at_end=false", "eval_suite.seeds=[0]",
            "eval_suite.steps=2", "eval_suite.templates=[\"{actor} {action}\"]"]
    benchmark.main(args)
    results = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in results["rows"]}
    assert set(rows) == {"twinact", "ti_lora", "upper_bound", "positive_control"}
    assert set(results["per_action"]) == {"dabbing", "squatting"} and rows["positive_control"]["replicates"] == 2
    assert rows["twinact"]["training_seeds"] == [0, 1] and rows["twinact"]["replicates"] == 2
    assert rows["upper_bound"]["training_seeds"] == [] and rows["upper_bound"]["replicates"] == 1
    for metric in ("s_action", "action_correct", "pose_distance", "error_arms", "s_actor_clip", "leakage_clip"):
        assert 0 <= rows["twinact"][metric] <= 2, metric
    assert {(p["a"], p["b"]) for p in results["paired"]} == {("twinact", "ti_lora")}
    assert all(set(p) >= {"a", "b", "metric", "mean", "ci95"} for p in results["paired"])
    assert results["curves"] == [] and not (out / "curves.png").exists()  # no --curve-steps
    for name in ("table.md", "table.csv", "paired.md", "per_action.md", "grid_dabbing.png"):
        assert (out / name).is_file(), name
    table = (out / "table.md").read_text()
    benchmark.main(args)  # every point finished: nothing retrained, the same table
    assert (out / "table.md").read_text() == table


def test_curve_budgets_write_the_curves_and_the_matched_table(tmp_path):
    out = tmp_path / "bench"
    benchmark.main(["--out", str(out), "--actions", "dabbing", "--rows", "twinact", "ti_lora", "--seeds", "0",
                    "--steps", "2", "--curve-steps", "1", "--batch", "2", "--accumulate", "1",
                    f"cache_dir={tmp_path / 'cache'}", "logger=none", "sample_at_end=false", "eval_suite.seeds=[0]",
                    "eval_suite.steps=2", "eval_suite.templates=[\"{actor} {action}\"]"])
    results = json.loads((out / "results.json").read_text())
    assert sorted((p["method"], p["steps"]) for p in results["curves"]) == [
        ("ti_lora", 1), ("ti_lora", 2), ("twinact", 1), ("twinact", 2)]
    assert (out / "runs" / "steps1" / "dabbing" / "ti_lora" / "seed0" / "eval" / "metrics.json").is_file()
    saved = json.loads((out / "curves.json").read_text())
    assert saved["points"] == results["curves"] and saved["matched"] == results["matched_accuracy"]
    assert (out / "curves.png").stat().st_size > 10_000 and (out / "curves.md").read_text().startswith("Leakage at")


USER_ACTION = {"name": "reaching_lunge", "phrase": "doing a reaching lunge", "split": "test",
               "pose": {"view": "side", "lean": 30, "right_shoulder": 80, "left_hip": 88, "left_knee": 5,
                        "right_hip": -25, "right_knee": 10},
               "units": ["torso.lean_forward", "right_arm.forward", "left_leg.forward", "right_leg.back"],
               "description": "leaning into a forward kick while reaching ahead"}


@pytest.fixture
def restore_actions():
    """add_heldout registers a file's actions process-wide; put the shipped lists back after the test."""
    from stickworld.world import actions

    saved = dict(actions.HELDOUT_ACTIONS), dict(actions.ACTIONS)
    yield
    for table, old in zip((actions.HELDOUT_ACTIONS, actions.ACTIONS), saved):
        table.clear()
        table.update(old)


def test_a_users_actions_file_runs_end_to_end(tmp_path, restore_actions):
    """A held-out action from the user's own file: its exemplars drawn from the file, trained, scored against its
    own pose, the upper bound from its units, a grid; nothing in the package edited."""
    from stickworld.protocol import compare_methods
    from stickworld.world import units
    from stickworld.world.skeleton import Pose

    assert units.compose("side", USER_ACTION["units"]) == Pose(**USER_ACTION["pose"])  # a pose of the grammar
    actions_file = tmp_path / "mine.json"
    actions_file.write_text(json.dumps([USER_ACTION]))
    out = tmp_path / "bench"
    args = ["--out", str(out), "--actions-file", str(actions_file), "--rows", "twinact", "upper_bound",
            "--seeds", "0", "--steps", "2", "--batch", "2", "--accumulate", "1",
            f"cache_dir={tmp_path / 'cache'}", "logger=none", "sample_at_end=false", "eval_suite.seeds=[0]",
            "eval_suite.steps=2", "eval_suite.templates=[\"{actor} {action}\"]"]
    benchmark.main(args)
    exemplars = out / "exemplars" / "reaching_lunge"
    assert len(list(exemplars.glob("*.png"))) == 5
    assert json.loads((exemplars / "exemplars.json").read_text())["actors"] == ["superhero"]
    results = json.loads((out / "results.json").read_text())
    assert results["actions"] == ["reaching_lunge"] and set(results["per_action"]) == {"reaching_lunge"}
    assert {r["method"] for r in results["rows"]} == {"twinact", "upper_bound"}
    config = (out / "runs/steps2/reaching_lunge/twinact/seed0/config.yaml").read_text()
    assert str(exemplars) in config
    assert (out / "grid_reaching_lunge.png").is_file()
    # The comparison takes the same file; a name the file does not hold is one clear error.
    with pytest.raises(Exception, match="unknown held-out action"):
        compare_methods.main(["--out", str(tmp_path / "cmp"), "--actions-file", str(actions_file),
                              "--actions", "jumping_lunge"])
