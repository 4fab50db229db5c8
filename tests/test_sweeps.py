"""Sweeps: stable run dirs, skip-or-resume on relaunch, the submitit launcher, and the comparison table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, fast_overrides
from safetensors.torch import load_file

from twinact.errors import TwinActError
from twinact.eval.compare import compare, load_wandb, summarize
from twinact.train.training import train

FAST = ["logger=csv", "method.stage1.steps=1", "method.stage2.steps=2"]


def test_relaunched_sweep_skips_finished_and_resumes_partial(tiny_cfg, tmp_path):
    done = train(tiny_cfg(f"run_dir={tmp_path / 'g' / 'a'}", "resume=auto", *FAST)).run_dir
    partial = train(tiny_cfg(f"run_dir={tmp_path / 'g' / 'b'}", "resume=auto", "trainer.stop_after_steps=2",
                             *FAST)).run_dir
    assert not (partial / "export").exists() and (partial / "checkpoints" / "last.ckpt").is_file()
    stamp = (done / "export" / "twinact.json").stat().st_mtime_ns

    again = train(tiny_cfg(f"run_dir={done}", "resume=auto", *FAST))
    assert again.module is None and (done / "export" / "twinact.json").stat().st_mtime_ns == stamp
    resumed = train(tiny_cfg(f"run_dir={partial}", "resume=auto", *FAST))
    assert resumed.run_dir == partial and resumed.trainer.global_step == 3
    straight = train(tiny_cfg(f"run_dir={tmp_path / 'straight'}", *FAST)).run_dir
    a = load_file(straight / "export" / "pytorch_lora_weights.safetensors")
    b = load_file(partial / "export" / "pytorch_lora_weights.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in (partial / "logs").iterdir()) == ["version_0", "version_1"]  # nothing overwritten


def test_relaunched_sweep_finishes_a_stopped_evaluation(tiny_cfg, tmp_path):
    """A point stopped after its export but before its evaluation's metrics is evaluated, not retrained."""
    overrides = [f"run_dir={tmp_path / 'p'}", "resume=auto", "eval=true", "eval_suite.steps=2", "eval_suite.seeds=[0]",
                 *FAST]
    run = train(tiny_cfg(*overrides)).run_dir
    metrics = run / "eval" / "metrics.json"
    expected = metrics.read_text()
    metrics.unlink()
    stamp = (run / "export" / "twinact.json").stat().st_mtime_ns

    again = train(tiny_cfg(*overrides))
    assert again.module is None and (run / "export" / "twinact.json").stat().st_mtime_ns == stamp
    assert metrics.read_text() == expected


def test_relaunch_with_other_settings_is_refused(tiny_cfg, tmp_path):
    """A sweep relaunched after a setting changed (an edited default, another override) must not skip or continue
    the points made with the old one: their results would be mixed into the new table without a trace."""
    done = train(tiny_cfg(f"run_dir={tmp_path / 'a'}", "resume=auto", *FAST)).run_dir
    partial = train(tiny_cfg(f"run_dir={tmp_path / 'b'}", "resume=auto", "trainer.stop_after_steps=1", *FAST)).run_dir
    for run in (done, partial):
        stamp = (run / "config.yaml").stat().st_mtime_ns
        with pytest.raises(TwinActError, match=r"other settings \(method.stage2.lora_lr: 0.0002 -> 0.001\)"):
            train(tiny_cfg(f"run_dir={run}", "resume=auto", "method.stage2.lora_lr=1e-3", *FAST))
        assert (run / "config.yaml").stat().st_mtime_ns == stamp
    # where output goes and how it is shown may change; the point then resumes (or is skipped) as before
    assert train(tiny_cfg(f"run_dir={done}", "resume=auto", *FAST, "callbacks.sample_steps=3")).module is None


def test_two_point_sweep_through_submitit_local_and_compare(tmp_path):
    overrides = [o for o in fast_overrides(tmp_path) if not o.startswith(("run_dir=", "lora.rank=", "logger="))]
    cmd = [sys.executable, str(REPO / "train.py"), "-m", "experiment=ablate_lora_rank", "model=tiny", "lora.rank=2,4",
           "hydra/launcher=local", "logger=csv", *overrides]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    group = tmp_path / "runs" / "ablate_lora_rank"
    points = sorted(p.name for p in group.iterdir() if (p / "export" / "twinact.json").is_file())
    assert points == ["lora.rank-2", "lora.rank-4"], points
    # hydra.launcher.max_parallel=1 (the default): the second point starts after the first has finished
    spans = []
    for point in points:
        stamps = [line[:23] for line in (group / point / "train.log").read_text().splitlines() if line[:4].isdigit()]
        spans.append((stamps[0], stamps[-1]))
    assert spans[0][1] <= spans[1][0] or spans[1][1] <= spans[0][0], spans

    table, out_dir = compare(run_group="ablate_lora_rank", root=str(tmp_path / "runs"))
    assert "lora.rank" in table and "final_train_mse" in table
    assert (out_dir / "compare.png").is_file() and (out_dir / "compare.csv").is_file()


def test_summary_pools_seeds_with_a_confidence_interval():
    records = [{"run": f"r{i}", "config": {"lora.rank": rank, "seed": seed, "method.name": "twinact"},
                "metrics": {"s": value}}
               for i, (rank, seed, value) in enumerate([(4, 0, 1.0), (4, 1, 3.0), (8, 0, 5.0), (8, 1, 5.0)])]
    keys, metrics, rows = summarize(records)
    assert keys == ["lora.rank"] and metrics == ["s"]
    assert [(r["lora.rank"], r["n"], r["s"]) for r in rows] == [(4, 2, 2.0), (8, 2, 5.0)]
    assert rows[0]["s_ci95"] > 10 and rows[1]["s_ci95"] == 0  # t(0.975, 1) * std / sqrt(2) = 12.7


def test_wandb_source_reads_synced_runs():
    class Run:
        def __init__(self, name, rank, value, state="finished"):
            self.name, self.config, self.summary = name, {"lora": {"rank": rank}}, {"final_mse": value, "_step": 9}
            self.state = state

    class Api:
        def runs(self, path, filters):
            assert path == "me/twinact" and filters == {"group": "g"}
            return [Run("a", 2, 0.5), Run("b", 4, 0.25), Run("c", 4, 9.0, state="crashed")]

    records, left_out = load_wandb("g", "twinact", "me", api=Api())
    keys, metrics, rows = summarize(records)
    assert left_out == [("c", "unfinished (W&B state crashed)")]
    assert keys == ["lora.rank"] and metrics == ["final_mse"] and rows[1]["final_mse"] == 0.25


def test_wandb_source_without_access_is_one_error_naming_login_and_sync():
    class Api:
        def runs(self, path, filters):
            raise ValueError("No API key configured. Use `wandb login` to log in.")

    with pytest.raises(TwinActError, match=r"wandb login.*wandb sync .*source=local"):
        load_wandb("g", "twinact", None, api=Api())
