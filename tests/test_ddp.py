"""Two DDP processes (CPU, gloo) train the same weights as one process with the same global batch."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import REPO
from safetensors.torch import load_file


def _train(tmp_path, name: str, *overrides: str) -> subprocess.CompletedProcess:
    args = [f"run_dir={tmp_path / name}", f"cache_dir={tmp_path / 'cache'}", "logger=none", "method.stage1.steps=2",
            "method.stage2.steps=2", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
            "callbacks.samples_every_n_steps=0", "sample_at_end=false", "lora.rank=4", "loss.similarity.start=0",
            "loss.similarity.min_timestep=500", *overrides]
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ddp_two_processes_match_one(tmp_path):
    one = _train(tmp_path, "one", "data.batch_size=4", "trainer.devices=1")
    assert one.returncode == 0, one.stderr[-3000:]
    two = _train(tmp_path, "two", "data.batch_size=2", "trainer.devices=2", "trainer.strategy=ddp")
    assert two.returncode == 0, two.stderr[-3000:]  # both processes exited cleanly
    assert "Traceback" not in two.stderr
    assert "Starting with 2 processes" in two.stdout + two.stderr
    assert not (tmp_path / "two-1").exists(), "the worker process must reuse rank 0's run dir"
    for name in ("twinact_state.safetensors", "pytorch_lora_weights.safetensors"):
        a, b = load_file(tmp_path / "one" / "export" / name), load_file(tmp_path / "two" / "export" / name)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=f"{name}: {key}")
