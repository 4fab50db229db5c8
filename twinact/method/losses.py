"""Training losses: the diffusion objective and TwinAct's action-similarity loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from twinact.errors import TwinActError


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


def diffusion_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet should predict under the scheduler's `prediction_type`."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise TwinActError(f"prediction_type={kind!r} is not supported (epsilon, v_prediction).")


def snr(scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    abar = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    return abar / (1 - abar)


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, scheduler, timesteps: torch.Tensor,
                   min_snr_gamma: float | None = None) -> torch.Tensor:
    """Per-sample MSE, optionally Min-SNR-gamma weighted (Hang et al. 2023), averaged over the batch."""
    per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=tuple(range(1, pred.dim())))
    if min_snr_gamma:
        s = snr(scheduler, timesteps)
        weight = torch.clamp(s, max=min_snr_gamma) / s
        if scheduler.config.prediction_type == "v_prediction":
            weight = torch.clamp(s, max=min_snr_gamma) / (s + 1)
        per_sample = per_sample * weight
    return per_sample.mean()


def predicted_x0(scheduler, noisy: torch.Tensor, pred: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """The clean latent implied by the model output: x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar), or its
    v-prediction counterpart x0 = sqrt(abar) x_t - sqrt(1 - abar) v."""
    abar = _expand(scheduler.alphas_cumprod.to(noisy.device)[timesteps].float(), noisy)
    x_t, out = noisy.float(), pred.float()
    if scheduler.config.prediction_type == "v_prediction":
        return abar.sqrt() * x_t - (1 - abar).sqrt() * out
    return (x_t - (1 - abar).sqrt() * out) / abar.sqrt()


def action_similarity_loss(generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(generated, reference) over the batch ([B, d] image embeddings)."""
    return (1 - F.cosine_similarity(generated.float(), reference.float(), dim=-1)).mean()
