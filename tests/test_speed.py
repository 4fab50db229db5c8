"""The benchmark measures both sides of its ratio on the tiny model."""

from __future__ import annotations

from benchmarks.speed import markdown_table, measure_bare, measure_twinact, parse


def test_both_sides_measure_a_few_steps(tmp_path):
    args = parse(["--model", "tiny", "--steps", "2", "--warmup", "1", "--batch-size", "2",
                  "--run-dir", str(tmp_path / "run")])
    twinact, bare = measure_twinact(args), measure_bare(args)
    assert 0 < twinact["step_s"] < 30 and 0 < bare["step_s"] < 30
    assert twinact["startup_s"] > 0 and bare["tflop_per_step"] > 0 and twinact["peak_mem_gib"] > 0.05
    row = {"model": "tiny", "batch_size": 2, "resolution": 64, "precision": "32-true", "gradient_checkpointing": False,
           "machine": "cpu", "twinact": twinact, "bare": bare, "ratio": twinact["step_s"] / bare["step_s"]}
    assert "| tiny | 2 x 64 |" in markdown_table([row])
