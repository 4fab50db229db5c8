"""What a crash or a diverging run leaves behind: whole checkpoints, one last.ckpt, no export of a failed run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from twinact.errors import NonFiniteError, TwinActError, WriteError
from twinact.train.checkpoint_io import AtomicCheckpointIO
from twinact.train.training import train


def test_a_save_killed_midway_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    before = path.read_bytes()

    def torn(self, checkpoint, target, storage_options=None):
        Path(target).write_bytes(b"half a checkpoint")
        raise OSError("killed")

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", torn)
    with pytest.raises(WriteError, match=r"could not write .*last.ckpt: killed\."):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_resumed_run_keeps_one_last_checkpoint_and_no_temporary_files(tiny_cfg, tmp_path):
    first = train(tiny_cfg("resume=auto", "trainer.stop_after_steps=2", stage1=2, stage2=2))
    assert not (first.run_dir / "export").exists()
    second = train(tiny_cfg("resume=auto", stage1=2, stage2=2))
    assert second.run_dir == first.run_dir and second.trainer.global_step == 4
    names = sorted(p.name for p in (first.run_dir / "checkpoints").iterdir())
    assert names == ["last.ckpt"] + [f"step{s:06d}.ckpt" for s in range(1, 5)]
    last = torch.load(first.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 4


def test_a_diverging_run_stops_with_one_error_and_is_marked_failed(tiny_cfg, tmp_path):
    cfg = tiny_cfg("method.stage1.lr=1e30", "resume=auto", stage1=4, stage2=2)
    with pytest.raises(NonFiniteError, match=r"non-finite .* at step \d+ \(stage 1\).*lower method\.stage1\.lr=1e\+30"):
        train(cfg)
    run = tmp_path / "run"
    assert not (run / "export").exists()
    assert "non-finite" in (run / "FAILED").read_text()
    for ckpt in (run / "checkpoints").glob("*.ckpt"):  # whatever was saved is finite
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt.name
    with pytest.raises(TwinActError, match="diverged before"):
        train(cfg)


def test_resume_auto_replaces_an_interrupted_export(tiny_cfg, tmp_path):
    first = train(tiny_cfg("resume=auto", "trainer.stop_after_steps=1", stage1=1, stage2=1))
    (first.run_dir / "export").mkdir()
    (first.run_dir / "export" / "pytorch_lora_weights.safetensors").write_bytes(b"torn")  # killed mid-export
    second = train(tiny_cfg("resume=auto", stage1=1, stage2=1))
    export = second.run_dir / "export"
    assert (export / "twinact.json").is_file() and (export / "pytorch_lora_weights.safetensors").stat().st_size > 4
    assert not list(second.run_dir.glob(".*partial"))
    assert all(p.stat().st_mode & 0o777 == (0o755 if p.is_dir() else 0o644) for p in [export, *export.rglob("*")])


def test_a_torn_last_checkpoint_falls_back_to_the_newest_readable_one(tiny_cfg, tmp_path, caplog):
    first = train(tiny_cfg("resume=auto", "trainer.stop_after_steps=3", stage1=2, stage2=2)).run_dir
    (first / "checkpoints" / "last.ckpt").write_bytes(b"torn by a full disk")
    with pytest.raises(TwinActError, match=r"not a readable .* newest readable one beside it is .*step000003\.ckpt"):
        train(tiny_cfg(f"run_dir={tmp_path / 'other'}", f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}",
                       stage1=2, stage2=2))
    assert not (tmp_path / "other").exists()
    with caplog.at_level("WARNING", logger="twinact.train.checkpoint_io"):
        resumed = train(tiny_cfg("resume=auto", stage1=2, stage2=2))
    assert resumed.trainer.global_step == 4 and (first / "export" / "twinact.json").is_file()
    assert any("last.ckpt" in r.getMessage() and "step000003.ckpt" in r.getMessage() for r in caplog.records)


def test_resuming_with_another_seed_or_schedule_is_refused(tiny_cfg, tmp_path):
    half = train(tiny_cfg(f"run_dir={tmp_path / 'a'}", "trainer.stop_after_steps=2", stage1=2, stage2=2)).run_dir
    ckpt = f"ckpt_path={half / 'checkpoints' / 'last.ckpt'}"
    fix = "Resume with seed=0 method.stage1.steps=2 method.stage2.steps=2"
    with pytest.raises(TwinActError, match=r"trained with seed=0 .* seed 1 instead of 0.*" + fix):
        train(tiny_cfg(f"run_dir={tmp_path / 'b'}", ckpt, "seed=1", stage1=2, stage2=2))
    with pytest.raises(TwinActError, match=r"steps \[2, 1\] instead of \[2, 2\].*" + fix):
        train(tiny_cfg(f"run_dir={tmp_path / 'b'}", ckpt, stage1=2, stage2=1))
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("where,message", [("file", "is a file; give a folder"),
                                           ("below_file", "lies below the file")])
def test_a_run_dir_that_cannot_be_a_folder_is_one_error(tiny_cfg, tmp_path, where, message):
    (tmp_path / "taken").write_text("a file")
    run_dir = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "run"
    with pytest.raises(TwinActError, match=message):
        train(tiny_cfg(f"run_dir={run_dir}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def _signal_at_step(monkeypatch, step: int, signum=signal.SIGUSR2):
    from twinact.method.module import TwinActModule

    real = TwinActModule.training_step

    def training_step(self, *args, **kwargs):
        if self.global_step == step:
            os.kill(os.getpid(), signum)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TwinActModule, "training_step", training_step)


def test_a_preemption_signal_writes_last_checkpoint_then_reaches_the_previous_handler(tiny_cfg, tmp_path,
                                                                                     monkeypatch):
    """submitit requeues on SIGUSR2 (and Lightning on SIGUSR1): by the time its handler runs, last.ckpt holds the
    step in progress when the signal came, not the last periodic checkpoint (here: none, every 100 steps)."""
    seen = []

    def submitit_like(signum, frame):
        seen.append(torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"])

    previous = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        _signal_at_step(monkeypatch, 1)
        train(tiny_cfg("callbacks.checkpoint_every_n_steps=100", stage1=2, stage2=2))
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert seen == [2]


def test_a_preemption_signal_without_a_handler_stops_at_a_checkpoint_and_resumes(tiny_cfg, tmp_path, monkeypatch):
    previous = signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # its default would kill the process
    try:
        _signal_at_step(monkeypatch, 1, signal.SIGUSR1)
        first = train(tiny_cfg("resume=auto", "callbacks.checkpoint_every_n_steps=100", stage1=2, stage2=2))
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert first.trainer.global_step == 2 and not (first.run_dir / "export").exists()
    monkeypatch.undo()
    second = train(tiny_cfg("resume=auto", "callbacks.checkpoint_every_n_steps=100", stage1=2, stage2=2))
    assert second.trainer.global_step == 4 and (first.run_dir / "export" / "twinact.json").is_file()
