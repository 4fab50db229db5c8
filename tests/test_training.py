"""End-to-end training on the tiny model: stages, frozen weights, resume, checkpoints, run dirs."""

from __future__ import annotations

import csv

import pytest
import torch
from safetensors.torch import load_file

from twinact.errors import TwinActError
from twinact.models import build_tiny
from twinact.training import train


def _frozen_match(trained, fresh) -> None:
    """Every non-LoRA weight of `trained` equals the fresh model's (peft renames wrapped layers `base_layer`)."""
    fresh_params = dict(fresh.named_parameters())
    checked = 0
    for name, p in trained.named_parameters():
        if "lora_" in name:
            continue
        assert torch.equal(p, fresh_params[name.replace(".base_layer", "")]), name
        checked += 1
    assert checked == len(fresh_params)


def test_fast_dev_run_trains_and_exports(tiny_cfg):
    result = train(tiny_cfg("trainer.fast_dev_run=true"))
    assert (result.run_dir / "export" / "pytorch_lora_weights.safetensors").is_file()
    assert (result.run_dir / "config.yaml").is_file() and (result.run_dir / "meta.json").is_file()


def test_two_stages_change_only_trainable_weights(tiny_cfg):
    result = train(tiny_cfg("logger=csv", stage1=3, stage2=3))
    module = result.module
    fresh = build_tiny()
    _frozen_match(module.unet, fresh.unet)
    _frozen_match(module.vae, fresh.vae)
    # The text encoder's own weights (the embedding table included) are untouched; only the wrapper is new.
    wrapped = {n.replace("embeddings.token_embedding.base.", "embeddings.token_embedding."): p
               for n, p in module.text_encoder.named_parameters() if ".vectors." not in n}
    for name, p in fresh.text_encoder.named_parameters():
        assert torch.equal(wrapped[name], p), name
    lora_b = [p for n, p in module.unet.named_parameters() if "lora_B" in n]
    assert any(p.abs().sum() > 0 for p in lora_b), "LoRA did not train in stage 2"

    rows = list(csv.DictReader(open(result.run_dir / "logs" / "metrics.csv")))
    lr_rows = [r for r in rows if r.get("lr-AdamW/lora")]
    lora_lr = {int(r["step"]): float(r["lr-AdamW/lora"]) for r in lr_rows}
    assert [lora_lr[s] for s in range(3)] == [0.0, 0.0, 0.0] and lora_lr[3] > 0
    stages = [float(r["train/stage"]) for r in rows if r.get("train/stage")]
    assert stages == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    for name in ("last.ckpt", "step000003.ckpt"):
        assert (result.run_dir / "checkpoints" / name).is_file()


def test_stage1_only_leaves_lora_at_identity(tiny_cfg):
    module = train(tiny_cfg("lora=none", stage1=2, stage2=5)).module
    assert module.schedule.total_steps == 2 and not module.has_lora


def test_checkpoint_holds_trainable_state_only(tiny_cfg):
    run_dir = train(tiny_cfg(stage1=1, stage2=1)).run_dir
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    keys = list(ckpt["state_dict"])
    assert keys and all(k.startswith("vectors.") or "lora_" in k for k in keys)
    assert ckpt["optimizer_states"] and ckpt["twinact_fingerprint"]["lora_rank"] == 4


def test_resume_is_exact(tiny_cfg, tmp_path):
    straight = train(tiny_cfg(f"run_dir={tmp_path / 'a'}", stage1=2, stage2=2)).run_dir
    half = train(tiny_cfg(f"run_dir={tmp_path / 'b'}", "trainer.stop_after_steps=3", stage1=2, stage2=2)).run_dir
    resumed = train(tiny_cfg(f"run_dir={tmp_path / 'c'}", f"ckpt_path={half / 'checkpoints' / 'last.ckpt'}",
                             stage1=2, stage2=2)).run_dir
    for name in ("twinact_state.safetensors", "pytorch_lora_weights.safetensors"):
        a, b = load_file(straight / "export" / name), load_file(resumed / "export" / name)
        assert a.keys() == b.keys()
        for key in a:  # equal up to CPU kernels' float summation order (~1e-8 seen)
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
    # ...while stopping half way is far from it, so the tolerance cannot hide a missed or repeated step.
    half_b = load_file(half / "export" / "pytorch_lora_weights.safetensors")
    full_b = load_file(straight / "export" / "pytorch_lora_weights.safetensors")
    assert max((half_b[k] - full_b[k]).abs().max().item() for k in full_b) > 1e-4


def test_resume_refuses_missing_or_foreign_checkpoint(tiny_cfg, tmp_path):
    with pytest.raises(TwinActError, match="does not exist"):
        train(tiny_cfg(f"ckpt_path={tmp_path / 'nope.ckpt'}"))
    run_dir = train(tiny_cfg(f"run_dir={tmp_path / 'r4'}", stage1=1, stage2=1)).run_dir
    with pytest.raises(TwinActError, match="lora_rank"):
        train(tiny_cfg(f"run_dir={tmp_path / 'r8'}", "lora.rank=8", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"))
    assert not (tmp_path / "r8").exists(), "a refused run must not leave a run dir behind"
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(TwinActError, match="not a readable"):
        train(tiny_cfg(f"ckpt_path={garbage}"))


def test_existing_run_dir_is_never_overwritten(tiny_cfg, tmp_path):
    cfg = tiny_cfg("trainer.fast_dev_run=true")
    first = train(cfg).run_dir
    before = (first / "config.yaml").read_bytes(), sorted(p.name for p in first.iterdir())
    second = train(cfg).run_dir
    assert second != first and second.name == first.name + "-1"
    assert ((first / "config.yaml").read_bytes(), sorted(p.name for p in first.iterdir())) == before
