"""Tests for the diffusion objective and the action-similarity loss (twinact.method.losses)."""

import pytest
import torch
from diffusers import DDPMScheduler

from twinact.errors import TwinActError
from twinact.method.losses import action_similarity_loss, diffusion_loss, diffusion_target, predicted_x0, snr

TIMESTEPS = torch.tensor([0, 1, 50, 250, 500, 750, 999])


def sd_scheduler(prediction_type: str = "epsilon") -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", prediction_type=prediction_type, clip_sample=False)


def batch(n: int = len(TIMESTEPS), seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, 8, 8, generator=gen), torch.randn(n, 4, 8, 8, generator=gen)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_predicted_x0_recovers_clean_latents(prediction_type):
    scheduler = sd_scheduler(prediction_type)
    latents, noise = batch()
    noisy = scheduler.add_noise(latents, noise, TIMESTEPS)
    truth = noise if prediction_type == "epsilon" else scheduler.get_velocity(latents, noise, TIMESTEPS)
    x0 = predicted_x0(scheduler, noisy, truth, TIMESTEPS)
    assert x0.shape == latents.shape
    assert torch.allclose(x0, latents, atol=2e-4)
    # a wrong prediction does not recover them
    wrong = predicted_x0(scheduler, noisy, torch.zeros_like(truth), TIMESTEPS)
    assert not torch.allclose(wrong[2:], latents[2:], atol=1e-2)


def test_diffusion_target_per_prediction_type():
    latents, noise = batch()
    eps = sd_scheduler("epsilon")
    assert torch.equal(diffusion_target(eps, latents, noise, TIMESTEPS), noise)

    v = sd_scheduler("v_prediction")
    got = diffusion_target(v, latents, noise, TIMESTEPS)
    assert torch.equal(got, v.get_velocity(latents, noise, TIMESTEPS))
    abar = v.alphas_cumprod[TIMESTEPS].view(-1, 1, 1, 1)
    assert torch.allclose(got, abar.sqrt() * noise - (1 - abar).sqrt() * latents, atol=1e-5)

    with pytest.raises(TwinActError, match="sample"):
        diffusion_target(sd_scheduler("sample"), latents, noise, TIMESTEPS)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("gamma", [None, 5.0])
def test_diffusion_loss_is_zero_for_perfect_prediction(prediction_type, gamma):
    scheduler = sd_scheduler(prediction_type)
    latents, noise = batch()
    target = diffusion_target(scheduler, latents, noise, TIMESTEPS)
    assert diffusion_loss(target.clone(), target, scheduler, TIMESTEPS, gamma).item() == 0.0
    assert diffusion_loss(target + 0.5, target, scheduler, TIMESTEPS, gamma).item() > 0


def test_unweighted_loss_is_plain_mse():
    scheduler = sd_scheduler()
    pred, target = batch(3)
    t = torch.tensor([10, 500, 900])
    assert torch.allclose(diffusion_loss(pred, target, scheduler, t), ((pred - target) ** 2).mean())


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_downweights_low_noise_samples(prediction_type):
    """Min-SNR-5: weight min(SNR, 5)/SNR (epsilon) or min(SNR, 5)/(SNR + 1) (v-prediction)."""
    scheduler = sd_scheduler(prediction_type)
    target = torch.zeros(1, 4, 8, 8)
    pred = target + 1.0  # the same per-sample error at every timestep
    low, mid = torch.tensor([10]), torch.tensor([500])
    assert snr(scheduler, low) > 5 > snr(scheduler, mid)

    plain_low = diffusion_loss(pred, target, scheduler, low)
    weighted_low = diffusion_loss(pred, target, scheduler, low, min_snr_gamma=5.0)
    weighted_mid = diffusion_loss(pred, target, scheduler, mid, min_snr_gamma=5.0)
    assert plain_low.item() == pytest.approx(1.0)
    assert weighted_low < 0.1 * plain_low  # the weighting changes the loss
    assert weighted_low < weighted_mid  # small t (little noise) counts less
    s_low, s_mid = snr(scheduler, low).item(), snr(scheduler, mid).item()
    if prediction_type == "epsilon":
        assert weighted_low.item() == pytest.approx(5.0 / s_low, rel=1e-4)
        assert weighted_mid.item() == pytest.approx(1.0)  # SNR below gamma: unchanged
    else:
        assert weighted_low.item() == pytest.approx(5.0 / (s_low + 1), rel=1e-4)
        assert weighted_mid.item() == pytest.approx(s_mid / (s_mid + 1), rel=1e-4)

    # the weight applies per sample within a batch
    t = torch.cat([low, mid])
    both = diffusion_loss(pred.expand(2, -1, -1, -1), target.expand(2, -1, -1, -1), scheduler, t, 5.0)
    assert both.item() == pytest.approx((weighted_low.item() + weighted_mid.item()) / 2, rel=1e-5)


def test_action_similarity_loss_values():
    a = torch.tensor([[1.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 3.0, 0.0]])
    assert action_similarity_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert action_similarity_loss(a, 7 * a).item() == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    assert action_similarity_loss(a, b).item() == pytest.approx(1.0, abs=1e-6)
    assert action_similarity_loss(a, -2 * a).item() == pytest.approx(2.0, abs=1e-6)
    # batch mean: identical + opposite pairs average to 1
    gen = torch.cat([a, a])
    ref = torch.cat([a, -a])
    assert action_similarity_loss(gen, ref).item() == pytest.approx(1.0, abs=1e-6)


def test_action_similarity_loss_has_gradient_toward_reference():
    ref = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    gen = torch.randn(4, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    loss = action_similarity_loss(gen, ref)
    loss.backward()
    with torch.no_grad():
        assert action_similarity_loss(gen - 0.1 * gen.grad, ref) < loss
