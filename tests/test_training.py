"""End-to-end training on the tiny model: stages, frozen weights, resume, checkpoints, run dirs."""

from __future__ import annotations

import csv

import pytest
import torch
from safetensors.torch import load_file

from twinact.errors import TwinActError
from twinact.model.random_models import build_tiny
from twinact.train.training import train


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

    rows = list(csv.DictReader(open(result.run_dir / "logs" / "version_0" / "metrics.csv")))
    lr_rows = [r for r in rows if r.get("lr-AdamW/lora")]
    lora_lr = {int(r["step"]): float(r["lr-AdamW/lora"]) for r in lr_rows}
    assert [lora_lr[s] for s in range(3)] == [0.0, 0.0, 0.0] and lora_lr[3] > 0
    stages = [float(r["train/stage"]) for r in rows if r.get("train/stage")]
    assert stages == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    for name in ("last.ckpt", "step000003.ckpt"):
        assert (result.run_dir / "checkpoints" / name).is_file()


def test_lora_none_runs_stage1_only(tiny_cfg):
    module = train(tiny_cfg("method.lora=false", stage1=2, stage2=5)).module
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
    assert not (half / "export").exists(), "a stopped run must not look finished"
    half_state = torch.load(half / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    full_state = load_file(straight / "export" / "twinact_state.safetensors")
    gaps = [(half_state[k] - full_state[k]).abs().max().item() for k in half_state if k.startswith("vectors.")]
    assert max(gaps) > 1e-4


@pytest.mark.parametrize("at", [1, 2, 3])  # mid stage 1, at the stage boundary, mid stage 2
def test_resume_from_a_periodic_checkpoint_is_exact(tiny_cfg, tmp_path, at):
    """A run killed right after a periodic checkpoint and resumed from it ends where a straight run ends: samples,
    stage switch and LoRA optimizer reset are functions of the global step, not of Lightning's epoch or batch
    counters (a checkpoint written at an epoch's end restores that epoch)."""
    straight = train(tiny_cfg(f"run_dir={tmp_path / 'a'}", stage1=2, stage2=2)).run_dir
    checkpoint = straight / "checkpoints" / f"step{at:06d}.ckpt"
    resumed = train(tiny_cfg(f"run_dir={tmp_path / 'b'}", f"ckpt_path={checkpoint}", stage1=2, stage2=2)).run_dir
    for name in ("twinact_state.safetensors", "pytorch_lora_weights.safetensors"):
        a, b = load_file(straight / "export" / name), load_file(resumed / "export" / name)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")


def test_resume_refuses_missing_or_foreign_checkpoint(tiny_cfg, tmp_path):
    with pytest.raises(TwinActError, match="does not exist"):
        train(tiny_cfg(f"ckpt_path={tmp_path / 'nope.ckpt'}"))
    run_dir = train(tiny_cfg(f"run_dir={tmp_path / 'r4'}", stage1=1, stage2=1)).run_dir
    with pytest.raises(TwinActError, match="lora_rank"):
        train(tiny_cfg(f"run_dir={tmp_path / 'r8'}", "lora.rank=8",
                       f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"))
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


def test_loss_falls_on_a_fixed_batch(tiny_cfg):
    """A few optimizer steps on one fixed batch (same images, captions, timesteps and noise) lower its loss."""
    from twinact.method.data import ActionStream

    cfg = tiny_cfg("trainer.fast_dev_run=true", "method.stage1.lr=1e-2", "method.stage2.lora_lr=1e-2", stage1=0)
    module = train(cfg).module  # built and set up (latent cache) by a one-step run
    stream = ActionStream(6, 0, 4, ["{}"], "a figure {}", "<a1> <a2> <a3>", 0.0, 1000, seed=1)
    items = [stream[i] for i in range(4)]
    batch = {k: torch.tensor([it[k] for it in items]) for k in ("image", "flip", "timestep", "noise_seed")}
    batch["caption"] = [it["caption"] for it in items]
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    module.log_dict = lambda *a, **k: None  # no trainer attached to log to
    losses = []
    # One thread: this loop drives Adam into denormal floats, and `set_flush_denormal` only reaches the calling
    # thread, not an OpenMP pool started earlier in the session (seen: 100x slower steps when run after other tests).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(30):
            loss = module.training_step(batch, 0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("override", ["trainer.precision=bf16-mixed", "trainer.gradient_checkpointing=true",
                                      "loss.min_snr_gamma=5.0", "action_space=pooled", "action_encoder=learned",
                                      "action_space.offset=mean", "action_space.shared_mlp=true"])
def test_training_variants_run(tiny_cfg, override):
    result = train(tiny_cfg(override, "loss.similarity.start=0", "loss.similarity.min_timestep=-1", stage1=1,
                            stage2=1))
    assert (result.run_dir / "export" / "twinact_state.safetensors").is_file()


def test_similarity_loss_is_applied_when_due(tiny_cfg):
    cfg = tiny_cfg("logger=csv", "loss.similarity.start=0.5", "loss.similarity.min_timestep=-1", stage1=2, stage2=2)
    rows = list(csv.DictReader(open(train(cfg).run_dir / "logs" / "version_0" / "metrics.csv")))
    sims = [float(r["train/similarity"]) for r in rows if r.get("train/similarity")]
    # Per stage: off for the first half (steps 0 and 2), on after (steps 1 and 3).
    assert sims[0] == 0 and sims[2] == 0 and sims[1] > 0 and sims[3] > 0, sims


def test_wandb_logger_offline(tiny_cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    result = train(tiny_cfg("logger=wandb", stage1=1, stage2=1))
    assert list((result.run_dir / "wandb").glob("offline-run-*")), "no offline W&B run was written"


def test_metrics_are_logged_every_n_steps(tiny_cfg):
    run = train(tiny_cfg("logger=csv", "trainer.log_every_n_steps=2", stage1=2, stage2=2)).run_dir
    rows = list(csv.DictReader(open(run / "logs" / "version_0" / "metrics.csv")))
    steps = sorted({int(r["step"]) for r in rows if r.get("train/loss")})
    assert steps == [1, 3], steps
