"""Training latents: a draw from the VAE posterior (SD's VAEs) or its mean (`model.latents=mean`, StickWorld's)."""

from __future__ import annotations

import logging

import pytest
import torch

from tests.conftest import compose, model_of, module_of


def _stickworld_module(tmp_path, *overrides):
    cfg = compose(["experiment=stickworld", f"cache_dir={tmp_path}", "method.similarity_weight=0", *overrides])
    module = module_of(cfg, model_of(cfg))
    module.log_dict = lambda *a, **k: None  # no trainer attached to log to
    return module


def _training_latents(module) -> torch.Tensor:
    """The clean latents one training step feeds to the noise scheduler."""
    seen = []
    add_noise = module.noise_scheduler.add_noise
    module.noise_scheduler.add_noise = lambda latents, *rest: seen.append(latents) or add_noise(latents, *rest)
    batch = {"image": torch.tensor([0, 1]), "flip": torch.tensor([0, 0]), "timestep": torch.tensor([10, 900]),
             "noise_seed": torch.tensor([3, 4]), "caption": ["a <a1> <a2> <a3>"] * 2}
    with torch.no_grad():
        module.training_step(batch, 0)
    return seen[0]


def test_stickworld_trains_on_the_posterior_mean(tmp_path, caplog):
    """StickWorld's VAE decodes its posterior mean only; its posterior std (~1) buries the image, so a model=stickworld
    run trains on the mean (what pretraining used), and asking it to sample says why that is wrong."""
    module = _stickworld_module(tmp_path)
    with caplog.at_level(logging.WARNING, logger="twinact.method.module"):
        module.on_fit_start()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "twinact.method.module"]
    scale = module.vae.config.scaling_factor
    torch.testing.assert_close(_training_latents(module), module.latent_mean[[0, 1], 0] * scale)
    assert module.latent_std.mean() > module.latent_mean.std()  # why: the noise would outweigh the image

    sampled = _stickworld_module(tmp_path, "model.latents=sample")
    with caplog.at_level(logging.WARNING, logger="twinact.method.module"):
        sampled.on_fit_start()
    assert "model.latents=mean" in caplog.text
    drift = (_training_latents(sampled) - sampled.latent_mean[[0, 1], 0] * scale).std()
    assert drift > sampled.latent_mean.std() * scale  # the sampled latents are mostly noise


def test_unknown_latents_setting_is_refused(tiny_cfg):
    from twinact.errors import TwinActError
    from twinact.train.training import train

    with pytest.raises(TwinActError, match="model.latents='mode' is not one of sample, mean"):
        train(tiny_cfg("model.latents=mode"))


def test_tiny_model_vae_posterior_is_narrow_like_a_trained_one(tiny_base_model):
    """The tiny model stands in for SD, whose sampled training latents are the image plus a little noise; with a
    random VAE's std (~1) they would be mostly noise (and every tiny run would log the warning above)."""
    vae = tiny_base_model().vae
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        post = vae.encode(x).latent_dist
    assert post.std.mean() < 0.2 * post.mean.std()
