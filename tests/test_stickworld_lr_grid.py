"""The learning-rate grid: which rates a scale multiplies, which scale wins, and the chosen rates reaching the
benchmark's runs."""

from __future__ import annotations

import json

import pytest
from conftest import one_thread
from omegaconf import OmegaConf

from stickworld.protocol import benchmark, compare_methods, lr_grid
from twinact.errors import TwinActError

_one_thread = pytest.fixture(scope="module", autouse=True)(one_thread)


def test_a_scale_multiplies_every_rate_the_method_trains_and_no_other():
    assert lr_grid.rate_overrides("twinact", 3.0) == ["method.stage1.lr=0.0006", "method.stage2.lora_lr=0.0006"]
    assert lr_grid.rate_overrides("textual_inversion", 0.5) == ["method.stage1.lr=0.0025"]  # no LoRA
    assert lr_grid.rate_overrides("lora", 0.5) == ["method.stage2.lora_lr=0.0001"]  # its token is frozen
    assert lr_grid.rate_overrides("ti_lora", 1.0) == ["method.stage1.lr=0.005", "method.stage2.lora_lr=0.0002"]


def test_the_best_scale_wins_and_ties_go_to_the_configs_rates():
    assert lr_grid.choose({1 / 3: 0.2, 1.0: 0.3, 3.0: 0.5}) == 3.0
    assert lr_grid.choose({1 / 3: 0.5, 1.0: 0.5, 3.0: 0.5}) == 1.0
    assert lr_grid.choose({0.5: 0.5, 3.0: 0.5}) == 0.5  # nearer 1 on a log scale


def test_every_row_takes_the_rates_of_the_method_it_is_built_on():
    assert benchmark.row_method("twinact_random_basis") == "twinact"
    assert benchmark.row_method("ti_lora_similarity") == "ti_lora"
    assert benchmark.row_method(benchmark.POSITIVE_CONTROL) == "twinact"
    assert all(benchmark.row_method(r) in lr_grid.METHODS for r in benchmark.ROWS)


def test_a_missing_rates_file_names_the_command_that_writes_it(tmp_path):
    with pytest.raises(TwinActError, match="python -m stickworld.protocol.lr_grid --out"):
        compare_methods.chosen_rates(tmp_path / "rates.json")


def test_the_grids_chosen_rates_reach_the_benchmarks_runs(tmp_path):
    tiny = ["--steps", "2", "--batch", "2", "--accumulate", "1", f"cache_dir={tmp_path / 'cache'}", "logger=none",
            "sample_at_end=false", "eval_suite.seeds=[0]", "eval_suite.steps=2",
            "eval_suite.templates=[\"{actor} {action}\"]"]
    rates = lr_grid.main(["--out", str(tmp_path / "grid"), "--actions", "cartwheel", "--methods", "lora",
                          "--scales", "0.5", "2", *tiny])
    first = json.loads(rates.read_text())
    assert first["chosen"]["lora"]["scale"] in (0.5, 2.0) and (tmp_path / "grid" / "grid.md").is_file()
    # a grid extended by one more scale is read whole: the table and the choice cover all three
    rates = lr_grid.main(["--out", str(tmp_path / "grid"), "--actions", "cartwheel", "--methods", "lora",
                          "--scales", "4", *tiny])
    grid = json.loads(rates.read_text())
    assert set(grid["grid"]["lora"]) == {"0.5", "2", "4"} and len(grid["commands"]) == 2
    scores = {float(s): cell["action_correct"] for s, cell in grid["grid"]["lora"].items()}
    chosen = grid["chosen"]["lora"]
    assert chosen["scale"] == lr_grid.choose(scores)
    assert chosen["overrides"] == [f"method.stage2.lora_lr={2e-4 * chosen['scale']:.4g}"]
    for scale in (0.5, 2.0, 4.0):
        run = tmp_path / "grid" / "runs" / "lora" / f"x{scale:g}" / "cartwheel" / "seed0"
        cfg = OmegaConf.load(run / "config.yaml")
        assert cfg.method.stage2.lora_lr == pytest.approx(2e-4 * scale)
    benchmark.main(["--out", str(tmp_path / "bench"), "--actions", "cartwheel", "--rows", "lora", "--seeds", "0",
                    "--rates", str(rates), *tiny])
    cfg = OmegaConf.load(tmp_path / "bench" / "runs" / "steps2" / "cartwheel" / "lora" / "seed0" / "config.yaml")
    assert cfg.method.stage2.lora_lr == pytest.approx(2e-4 * chosen["scale"])
