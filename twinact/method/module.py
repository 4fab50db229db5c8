"""The LightningModule: frozen SD parts around the trainable placeholder vectors and UNet LoRA.

Stage 1 trains the coefficient MLPs only (LoRA exists but its learning rate is 0, and with B = 0 it is the
identity); stage 2 switches LoRA on. The stage is a function of the global step, so resuming lands in the right one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import nn

from twinact.errors import NonFiniteError, TwinActError
from twinact.method.losses import action_similarity_loss, diffusion_loss, diffusion_target, predicted_x0
from twinact.model.conditioning import added_conditioning, encode_captions

log = logging.getLogger(__name__)


@dataclass
class StageSchedule:
    """Two-stage recipe (`method.*`; its defaults live in `twinact.config.schema.MethodConfig`)."""

    stage1_steps: int
    stage2_steps: int
    lr: float  # coefficient MLPs
    lora_lr: float
    warmup_steps: int
    weight_decay: float
    use_8bit_adam: bool
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's, not a setting

    @property
    def total_steps(self) -> int:
        return self.stage1_steps + self.stage2_steps

    def stage(self, step: int) -> int:
        return 1 if step < self.stage1_steps else 2

    def progress(self, step: int) -> float:
        """Fraction of the current stage done at `step`."""
        if self.stage(step) == 1:
            return step / max(1, self.stage1_steps)
        return (step - self.stage1_steps) / max(1, self.stage2_steps)

    def lr_factor(self, step: int, lora: bool) -> float:
        """Absolute learning rate at `step` (optimizer base lr is 1), linear warm-up at each stage start."""
        stage = self.stage(step)
        if lora and stage == 1:
            return 0.0
        since = step if stage == 1 else step - self.stage1_steps
        warm = min(1.0, (since + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return (self.lora_lr if lora else self.lr) * warm


@dataclass
class LossSettings:
    """Noise-prediction MSE + weight * action-similarity loss (`loss.*`, `method.similarity_weight`; their defaults
    live in `twinact.config.schema`)."""

    min_snr_gamma: float | None
    similarity_weight: float
    similarity_start: float
    similarity_min_timestep: int
    decode: str  # "x0": decode the predicted clean latent; "eps_raw": decode the raw prediction (released code)


class TwinActModule(pl.LightningModule):
    """Args:
    vectors: the placeholder-vector modules (already installed in the text encoders).
    comps: frozen `BaseModel` (text encoder wrapped, UNet with or without a LoRA adapter).
    exemplars: [N, 3, H, W] exemplar pixels in [-1, 1].
    schedule, losses: recipe.
    image_encoder: frozen image encoder for the similarity loss (None disables it).
    fingerprint: identity of the frozen parts, stored in checkpoints and checked on resume.
    time_ids: [N, 2, 6] SDXL micro-conditioning per exemplar and flip (None for SD1.5).
    sample_latents: draw each training latent from the VAE posterior (diffusers' training scripts) rather than
        take its mean. Only right for a VAE whose posterior spread is small next to its latents' (`model.latents`).
    """

    def __init__(self, vectors: nn.ModuleList, comps, exemplars: torch.Tensor, schedule: StageSchedule,
                 losses: LossSettings, image_encoder: nn.Module | None, fingerprint: dict,
                 time_ids: torch.Tensor | None = None, gradient_checkpointing: bool = False,
                 sample_latents: bool = True):
        super().__init__()
        self.vectors = vectors  # registered first so its parameters are named `vectors.*`
        self.text_encoders = nn.ModuleList(comps.text_encoders)
        self.vae, self.unet = comps.vae, comps.unet
        self.image_encoder = image_encoder
        self.noise_scheduler, self.comps = comps.noise_scheduler, comps
        self.register_buffer("exemplars", exemplars, persistent=False)
        self.register_buffer("time_ids", time_ids, persistent=False)
        self.schedule, self.losses, self.fingerprint = schedule, losses, fingerprint
        self.strict_loading = False  # checkpoints carry trainable weights only
        self.sample_latents = sample_latents
        self.has_lora = any("lora_" in n for n, _ in self.unet.named_parameters())
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()

    @property
    def scaled_gradients(self) -> bool:
        """Whether a grad scaler (fp16 mixed precision) handles inf gradients by skipping the step."""
        return self._trainer is not None and str(self.trainer.precision) in ("16-mixed", "16")

    @property
    def text_encoder(self):
        return self.comps.text_encoder

    def placeholder_embeddings(self) -> list[torch.Tensor]:
        """[slots, D_i] per text encoder: what the placeholders currently embed to."""
        return [enc.get_input_embeddings().placeholder_vectors() for enc in self.comps.text_encoders]

    # ----- trainable state -------------------------------------------------------------------------------------
    def lora_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.unet.named_parameters() if "lora_" in n]

    @staticmethod
    def is_trainable_key(key: str) -> bool:
        return key.startswith("vectors.") or ("lora_" in key and key.startswith("unet."))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if self.is_trainable_key(k)}
        checkpoint["twinact_fingerprint"] = self.fingerprint

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_fingerprint(checkpoint.get("twinact_fingerprint"), self.fingerprint)

    # ----- caches ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def on_fit_start(self) -> None:
        """Encode the few fixed exemplars once (both flips): VAE latent distribution and similarity embedding."""
        views = torch.stack([self.exemplars, self.exemplars.flip(-1)], 1)  # [N, 2, 3, H, W]
        flat = views.flatten(0, 1).to(self.vae.dtype)
        dist = self.vae.encode(flat).latent_dist
        shape = (*views.shape[:2], *dist.mean.shape[1:])
        self.latent_mean, self.latent_std = dist.mean.float().view(shape), dist.std.float().view(shape)
        if self.sample_latents:
            spread, blur = self.latent_mean.std().item(), self.latent_std.mean().item()
            if blur > 0.5 * spread:
                log.warning("The VAE's posterior std (%.3g) is comparable to its latents' spread (%.3g): sampled "
                            "training latents are mostly noise. A VAE trained to decode its posterior mean (like "
                            "StickWorld's) wants model.latents=mean.", blur, spread)
        self.reference = None
        if self.image_encoder is not None and self.losses.similarity_weight > 0:
            self.reference = self.image_encoder.embed_pixels(flat.float()).view(*views.shape[:2], -1)

    # ----- training --------------------------------------------------------------------------------------------
    def sample_noise(self, seeds: torch.Tensor, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample (latent draw, diffusion noise) from each sample's own seed: independent of rank and batch."""
        draws = []
        for seed in seeds.tolist():
            gen = torch.Generator().manual_seed(seed)
            draws.append(torch.randn((2, *shape), generator=gen))
        both = torch.stack(draws).to(self.device)
        return both[:, 0], both[:, 1]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        step, idx, flip, t = self.global_step, batch["image"], batch["flip"], batch["timestep"]
        mean, std = self.latent_mean[idx, flip], self.latent_std[idx, flip]
        latent_eps, noise = self.sample_noise(batch["noise_seed"], mean.shape[1:])  # both drawn either way
        latents = (mean + std * latent_eps if self.sample_latents else mean) * self.vae.config.scaling_factor
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        hidden, pooled = encode_captions(self.comps, batch["caption"], self.device)
        ids = self.time_ids[idx, flip] if self.time_ids is not None else None
        added = added_conditioning(pooled, ids, self.unet.dtype)
        pred = self.unet(noisy.to(self.unet.dtype), t, hidden.to(self.unet.dtype), added_cond_kwargs=added).sample
        target = diffusion_target(self.noise_scheduler, latents, noise, t)
        mse = diffusion_loss(pred, target, self.noise_scheduler, t, self.losses.min_snr_gamma)
        sim = self.similarity(noisy, pred, t, idx, flip, step)
        loss = mse + self.losses.similarity_weight * sim
        if not torch.isfinite(loss):
            self.diverged("loss", loss)
        # Lightning's logging costs ~4 ms a call, so only on the steps it will write (its own callbacks ask the same).
        if self._trainer is None or self.trainer._logger_connector.should_update_logs:
            self.log_dict({"train/loss": loss, "train/mse": mse, "train/similarity": sim,
                           "train/stage": float(self.schedule.stage(step))}, prog_bar=True, batch_size=len(idx))
        return loss

    def similarity(self, noisy, pred, t, idx, flip, step) -> torch.Tensor:
        """Action-similarity loss, once the stage is far enough along: each sample with t above the threshold adds
        1 - cos, the others 0, averaged over the batch (so the value does not depend on how a global batch is split
        across devices)."""
        losses = self.losses
        zero = pred.new_zeros((), dtype=torch.float32)
        if self.reference is None or self.schedule.progress(step) < losses.similarity_start:
            return zero
        mask = t > losses.similarity_min_timestep
        if not mask.any():
            return zero
        if losses.decode == "x0":
            latent = predicted_x0(self.noise_scheduler, noisy[mask], pred[mask], t[mask])
        else:  # "eps_raw": the released code decodes the noise prediction itself
            latent = pred[mask].float()
        images = self.vae.decode((latent / self.vae.config.scaling_factor).to(self.vae.dtype)).sample
        per_sample = action_similarity_loss(self.image_encoder.embed_pixels(images),
                                            self.reference[idx[mask], flip[mask]])
        return per_sample * mask.sum() / len(mask)

    def diverged(self, what: str, value: torch.Tensor) -> None:
        """Stop the run: nothing non-finite may reach a checkpoint or an export."""
        step, stage = self.global_step, self.schedule.stage(self.global_step)
        rate = f"method.stage1.lr={self.schedule.lr:g}" if stage == 1 else \
            f"method.stage2.lora_lr={self.schedule.lora_lr:g} (and method.stage1.lr={self.schedule.lr:g})"
        raise NonFiniteError(f"the {what} became non-finite ({float(value.detach())}) at step {step} (stage {stage}); "
                             f"the learning rate is the likely cause: lower {rate}. No export was written; the "
                             "checkpoints before this step are intact.")

    def on_before_optimizer_step(self, optimizer) -> None:
        """LoRA starts stage 2 with a fresh optimizer state: in stage 1 it saw gradients but a learning rate of 0.

        Keyed on the global step alone (the first stage-2 step), so it happens exactly once whether the run got
        there straight or resumed from any checkpoint.
        """
        if not self.scaled_gradients:  # a grad scaler skips inf steps on purpose; otherwise they are fatal
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
            if not torch.isfinite(norm):
                self.diverged("gradient norm", norm)
        if self.has_lora and self.global_step == self.schedule.stage1_steps:
            state = getattr(optimizer, "optimizer", optimizer).state  # Lightning may hand over its wrapper
            for p in self.lora_parameters():
                state.pop(p, None)

    def configure_optimizers(self):
        s = self.schedule
        groups, factors = [], []
        coefficient_params = [p for p in self.vectors.parameters() if p.requires_grad]
        if coefficient_params:  # none for DreamBooth-LoRA's frozen token
            groups.append({"params": coefficient_params, "name": "coefficients"})
            factors.append(lambda step: s.lr_factor(step, lora=False))
        if self.has_lora:
            groups.append({"params": self.lora_parameters(), "name": "lora"})
            factors.append(lambda step: s.lr_factor(step, lora=True))
        if not groups:
            raise TwinActError("Nothing to train: the method has neither trainable tokens nor LoRA.")
        opt = make_adamw(groups, s)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factors)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def make_adamw(groups: list[dict], s: StageSchedule) -> torch.optim.Optimizer:
    """AdamW with base lr 1 (the schedule gives absolute rates); bitsandbytes' 8-bit AdamW when asked for."""
    if s.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise TwinActError("method.use_8bit_adam=true needs bitsandbytes: pip install bitsandbytes") from None
        return bnb.optim.AdamW8bit(groups, lr=1.0, betas=s.betas, weight_decay=s.weight_decay)
    return torch.optim.AdamW(groups, lr=1.0, betas=s.betas, weight_decay=s.weight_decay)


_RECORDED_LATER = ("seed", "steps")


def check_fingerprint(saved: dict | None, current: dict) -> None:
    """Refuse a checkpoint made for another model, action space or trainable layout."""
    if saved is None:
        raise TwinActError("ckpt_path is not a twinact checkpoint (no fingerprint). Pass a checkpoints/*.ckpt of a "
                           "run.")
    # checkpoints written before seed and schedule were recorded still resume
    diff = {k: (saved.get(k), v) for k, v in current.items()
            if saved.get(k) != v and not (k in _RECORDED_LATER and k not in saved)}
    if diff and set(diff) <= {"seed", "steps"}:
        seed, (stage1, stage2) = saved["seed"], saved["steps"]
        asked = "; ".join(f"{k} {b!r} instead of {a!r}" for k, (a, b) in diff.items())
        raise TwinActError(f"ckpt_path was trained with seed={seed} and {stage1} + {stage2} steps, and this run asks "
                           f"for {asked}: resuming would train a run that neither setting describes. Resume with "
                           f"seed={seed} method.stage1.steps={stage1} method.stage2.steps={stage2}, or train anew "
                           "without ckpt_path.")
    if diff:
        detail = "; ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in diff.items())
        raise TwinActError(f"ckpt_path belongs to another set-up ({detail}). Resume with the run's own config.")
