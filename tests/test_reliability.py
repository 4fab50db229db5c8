"""What a crash or a diverging run leaves behind: whole checkpoints, one last.ckpt, no export of a failed run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from twinact.checkpoint_io import AtomicCheckpointIO
from twinact.errors import NonFiniteError, TwinActError
from twinact.training import train


def test_a_save_killed_midway_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    before = path.read_bytes()

    def torn(self, checkpoint, target, storage_options=None):
        Path(target).write_bytes(b"half a checkpoint")
        raise OSError("killed")

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", torn)
    with pytest.raises(OSError, match="killed"):
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
