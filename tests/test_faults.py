"""Fault injection: a training process killed with SIGKILL at any point, then `resume=auto` in the same run dir,
exports bitwise what a straight run exports (CPU, the tiny model)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, compose, fast_overrides
from safetensors import safe_open

from twinact.train.training import train

# Run in a child process: patch one place to SIGKILL the process there, then train.
KILLER = r"""
import os, signal, sys
from twinact.config.compose import compose_config
from twinact.method.module import TwinActModule
from twinact.train import checkpoint_io
from twinact.release import export
from twinact.train.training import train

point, overrides = sys.argv[1], sys.argv[2:]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if point.startswith("step"):  # while computing the step after checkpoint N was written
    n, real = int(point[4:]), TwinActModule.training_step
    def training_step(self, *a, **k):
        if self.global_step == n:
            die()
        return real(self, *a, **k)
    TwinActModule.training_step = training_step
elif point == "save":  # the third checkpoint save, after its temporary file is half written
    calls, parent = [0], checkpoint_io.TorchCheckpointIO.save_checkpoint
    def save(self, checkpoint, path, storage_options=None):
        calls[0] += 1
        if calls[0] == 3:
            open(path, "wb").write(b"half a checkpoint")
            die()
        return parent(self, checkpoint, path, storage_options)
    checkpoint_io.TorchCheckpointIO.save_checkpoint = save
elif point == "export":  # after the weights are written, before the model card
    export.write_card = lambda *a, **k: die()
train(compose_config(overrides))
raise SystemExit("not killed")
"""

STEPS = dict(stage1=2, stage2=2)


def _overrides(tmp_path: Path, run: str) -> list[str]:
    return fast_overrides(tmp_path, **{f"stage{i}": STEPS[f"stage{i}"] for i in (1, 2)}) + [
        f"run_dir={tmp_path / run}", "resume=auto", "lora.alpha=8", "method.stage2.lora_lr=1e-2"]


def _kill(tmp_path: Path, run: str, point: str) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLER, point, *_overrides(tmp_path, run)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-3000:]


def _weights(export: Path) -> dict[str, tuple]:
    """Every tensor's bytes and every file's metadata (safetensors writes the metadata keys in no fixed order)."""
    out = {}
    for path in sorted(export.rglob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            tensors = {k: f.get_tensor(k).numpy().tobytes() for k in f.keys()}
            out[str(path.relative_to(export))] = (f.metadata(), tensors)
    return out


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    return _weights(train(compose(_overrides(tmp, "run"))).run_dir / "export")


@pytest.mark.parametrize("points", [["step1"], ["step2"], ["step3"], ["save"], ["export"], ["step1", "step3"]],
                         ids=["mid-stage1", "stage-boundary", "mid-stage2", "during-save", "during-export",
                              "two-crashes"])
def test_killed_and_resumed_exports_what_a_straight_run_exports(tmp_path, straight, points):
    for point in points:
        _kill(tmp_path, "run", point)
    run = train(compose(_overrides(tmp_path, "run"))).run_dir
    assert _weights(run / "export") == straight
    assert not list((run / "checkpoints").glob(".*")), "stray temporary files"
    assert sorted(p.name for p in run.parent.iterdir()) == ["cache", "run"]  # resumed in place, nothing beside it
