"""What the base model's pretraining minimises: the VAE's reconstruction and the UNet's denoising objective, and the
latent scale between them. Shared by :mod:`stickworld.pretraining.pretrain` and
:mod:`stickworld.pretraining.decoder_finetune`."""

from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn.functional as F

from stickworld.pretraining.pretrain_data import batch
from twinact.method.losses import diffusion_loss, diffusion_target


def autocast(device: torch.device, precision: str):
    """A context factory: bf16 autocast on ``device``, or nothing (fp32)."""
    if precision == "bf16":
        return functools.partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def edges(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] images in [-1, 1] -> [B, 1, H, W] local contrast |x - blur(x)|, summed over channels: high on a
    figure's limbs and outlines, near zero on flat backdrops."""
    return (x - F.avg_pool2d(x, 5, 1, 2, count_include_pad=False)).abs().sum(1, keepdim=True)


def vae_loss(vae, x: torch.Tensor, cast=contextlib.nullcontext, edge_weight: float = 0.0) -> torch.Tensor:
    """L1 + MSE reconstruction of the posterior mean (a tiny KL), each pixel weighted by ``1 + edge_weight * |x -
    blur(x)|``: a figure's limbs are a few pixels of a mostly flat image, and unweighted losses learn the backdrop
    first and leave the limbs blurred for thousands of steps."""
    # Decode the posterior mean, not a sample: the diffusion model is trained on means, and with SD's tiny KL weight
    # the initial unit-variance sampling noise stayed large for the whole short run and blurred every reconstruction.
    with cast():
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.mean).sample
    diff = recon.float() - x
    weight = 1 + edge_weight * edges(x) if edge_weight else 1.0
    return (diff.abs() * weight).mean() + (diff**2 * weight).mean() + 1e-6 * post.kl().float().mean()


@torch.no_grad()
def latent_scale(vae, seed: int, n: int = 512) -> float:
    """1 / std of the VAE's latent means over ``n`` fresh drawings: unit-variance latents, as SD's 0.18215."""
    x, _ = batch(seed + 1, "vae", 10**6, n)
    return float(1.0 / vae.encode(x.to(vae.device)).latent_dist.mean.std())


def unet_loss(comps, x: torch.Tensor, ids: torch.Tensor, gen: torch.Generator, min_snr_gamma: float | None = None,
              cast=contextlib.nullcontext, figure_weight: float = 0.0) -> torch.Tensor:
    """The denoising loss on the frozen VAE's latents; ``figure_weight`` > 0 weights each latent cell by ``1 +
    figure_weight * (strongest edge in its pixels)``: the pose lives in a few thin limbs, a few percent of a
    backdrop-dominated image, so an unweighted loss spends most of its gradient on skies and floors."""
    with torch.no_grad(), cast():
        latents = comps.vae.encode(x).latent_dist.mean.float() * comps.vae.config.scaling_factor
    # Generated on the CPU generator whatever the device: the same noise and timesteps as a CPU run of this step.
    noise = torch.randn(latents.shape, generator=gen).to(latents.device)
    t = torch.randint(0, comps.noise_scheduler.config.num_train_timesteps, (len(x),), generator=gen)
    t = t.to(latents.device)
    noisy = comps.noise_scheduler.add_noise(latents, noise, t)
    target = diffusion_target(comps.noise_scheduler, latents, noise, t)
    with cast():
        hidden = comps.text_encoder(ids)[0]
        pred = comps.unet(noisy, t, hidden).sample
    if not figure_weight:
        return diffusion_loss(pred, target, comps.noise_scheduler, t, min_snr_gamma)
    cell = x.shape[-1] // latents.shape[-1]
    weight = 1 + figure_weight * F.max_pool2d(edges(x), cell)  # max: a 2-px limb marks its whole 4x4 cell
    return diffusion_loss(pred * weight.sqrt(), target * weight.sqrt(), comps.noise_scheduler, t, min_snr_gamma)
