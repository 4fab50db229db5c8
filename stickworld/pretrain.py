"""Pretrain the StickWorld base model (:mod:`stickworld.base_model`) on known actions only.

``python -m stickworld.pretrain --work runs/stickworld/v0_work --out runs/stickworld/v0`` trains in two
stages, each resumable at any checkpoint (``make stickworld`` runs the chain that made the shipped model,
``stickworld/data/base``: this, then three ``--init`` continuations):

1. the VAE (L1 + MSE reconstruction of the posterior mean, a tiny KL), then its latent scale (1 / std of latents,
   as SD's 0.18215);
2. the UNet and the text encoder together on the frozen VAE's latents (noise- or v-prediction MSE, 10% of captions
   dropped so classifier-free guidance works), with an EMA of both that is what gets exported.

Every batch is rendered fresh from a seed derived from (``--seed``, stage, step), so a resumed run sees exactly the
batches an unbroken one would, and there is no training set to memorise. Held-out actions never appear. The work
folder holds ``state.json``, safetensors checkpoints (weights, EMA, optimizer moments) and ``log.jsonl``; the
export is a plain diffusers folder (fp32 weights, the DDIM sampler) plus ``pretrain.json`` (command, steps, timings).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from safetensors.torch import load_file

from stickworld import base_model, mixture
from stickworld.checkpoints import load_optimizer, optimizer_tensors, save_tensors
from stickworld.render import sample
from twinact.losses import diffusion_loss, diffusion_target
from twinact.models import load_components
from twinact.sampling import save_as_pipeline

STAGES = ("vae", "unet")


def images_tensor(images) -> torch.Tensor:
    """PIL images -> float [B, 3, H, W] in [-1, 1] (the diffusers VAE's range)."""
    arr = np.stack([np.asarray(im, dtype=np.uint8) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def batch(seed: int, stage: str, step: int, size: int, drop: float = 0.0,
          captions: str | None = None) -> tuple[torch.Tensor, list[str]]:
    """The ``step``-th batch of ``stage`` (``drop`` of its captions emptied): known-action renders and captions, or
    with ``captions="grammar"`` the pose-grammar mixture of :mod:`stickworld.mixture`."""
    rng = np.random.default_rng([seed, STAGES.index(stage), step])
    if captions == "grammar":
        samples = [mixture.sample(rng) for _ in range(size)]
    else:
        samples = [sample(rng, "known") for _ in range(size)]
    captions = ["" if rng.random() < drop else s["caption"] for s in samples]
    return images_tensor([s["image"] for s in samples]), captions


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% of ``peak``: a function of the step alone, so resume is exact."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class Stage:
    """One stage's trainable modules, optimizer and EMA, with save/load of all three."""

    def __init__(self, name: str, modules: dict[str, torch.nn.Module], lr: float, ema: bool):
        self.name, self.modules = name, modules
        self.params = [p for m in modules.values() for p in m.parameters()]
        self.opt = torch.optim.AdamW(self.params, lr=lr, weight_decay=0.0)
        self.ema = {k: v.detach().clone() for k, v in self.weights().items()} if ema else None

    def weights(self) -> dict[str, torch.Tensor]:
        return {f"{m}.{k}": v for m, mod in self.modules.items() for k, v in mod.state_dict().items()}

    def update_ema(self, step: int) -> None:
        if self.ema is None:
            return
        decay = min(0.999, (1 + step) / (10 + step))  # short memory early, when the weights move most
        with torch.no_grad():
            for k, v in self.weights().items():
                if v.dtype.is_floating_point:
                    self.ema[k].lerp_(v, 1 - decay)
                else:
                    self.ema[k].copy_(v)

    def save(self, work: Path) -> None:
        save_tensors(self.weights(), work / f"{self.name}.safetensors")
        save_tensors(optimizer_tensors(self.opt), work / f"{self.name}.optim.safetensors")
        if self.ema is not None:
            save_tensors(self.ema, work / f"{self.name}.ema.safetensors")

    def load(self, work: Path) -> None:
        self.load_weights(load_file(str(work / f"{self.name}.safetensors")))
        load_optimizer(self.opt, load_file(str(work / f"{self.name}.optim.safetensors")))
        if self.ema is not None:
            self.ema = load_file(str(work / f"{self.name}.ema.safetensors"))

    def load_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        for m, mod in self.modules.items():
            prefix = f"{m}."
            mod.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})


def _log(work: Path, record: dict) -> None:
    with open(work / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def vae_loss(vae, x: torch.Tensor) -> torch.Tensor:
    # Decode the posterior mean, not a sample: the diffusion model is trained on means, and with SD's tiny KL weight
    # the initial unit-variance sampling noise stayed large for the whole short run and blurred every reconstruction.
    post = vae.encode(x).latent_dist
    recon = vae.decode(post.mean).sample
    return F.l1_loss(recon, x) + F.mse_loss(recon, x) + 1e-6 * post.kl().mean()


@torch.no_grad()
def latent_scale(vae, seed: int, n: int = 512) -> float:
    """1 / std of the VAE's latent means over ``n`` fresh renders: unit-variance latents, as SD's 0.18215."""
    x, _ = batch(seed + 1, "vae", 10**6, n)
    return float(1.0 / vae.encode(x).latent_dist.mean.std())


def unet_loss(comps, x: torch.Tensor, captions: list[str], gen: torch.Generator,
              min_snr_gamma: float | None = None) -> torch.Tensor:
    with torch.no_grad():
        latents = comps.vae.encode(x).latent_dist.mean * comps.vae.config.scaling_factor
    ids = comps.tokenizer(captions, padding="max_length", max_length=comps.tokenizer.model_max_length,
                          truncation=True, return_tensors="pt").input_ids
    hidden = comps.text_encoder(ids)[0]
    noise = torch.randn(latents.shape, generator=gen)
    t = torch.randint(0, comps.noise_scheduler.config.num_train_timesteps, (len(x),), generator=gen)
    noisy = comps.noise_scheduler.add_noise(latents, noise, t)
    target = diffusion_target(comps.noise_scheduler, latents, noise, t)
    return diffusion_loss(comps.unet(noisy, t, hidden).sample, target, comps.noise_scheduler, t, min_snr_gamma)


class Deadline(Exception):
    """Raised after a checkpoint once ``--stop-after`` minutes have passed."""


def run_stage(stage: Stage, work: Path, state: dict, total: int, args, step_fn) -> None:
    """Train ``stage`` from ``state[stage.name]`` to ``total`` steps, checkpointing every ``args.ckpt_every``."""
    start = state.get(stage.name, 0)
    if start:
        stage.load(work)
    window, t0 = [], time.time()
    for step in range(start, total):
        for group in stage.opt.param_groups:
            group["lr"] = lr_at(step, total, args.lr[stage.name], args.warmup)
        loss = step_fn(step)
        stage.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(stage.params, 1.0)
        stage.opt.step()
        stage.update_ema(step)
        window.append(float(loss.detach()))
        done = step + 1
        if done % args.log_every == 0 or done == total:
            _log(work, {"stage": stage.name, "step": done, "loss": float(np.mean(window)),
                        "lr": stage.opt.param_groups[0]["lr"], "s_per_step": (time.time() - t0) / len(window)})
            window, t0 = [], time.time()
        if done % args.ckpt_every == 0 or done == total:
            stage.save(work)
            state[stage.name] = done
            state["seconds"] = args.clock()
            (work / "state.json").write_text(json.dumps(state, indent=1))
            if args.deadline and time.time() > args.deadline and done < total:
                raise Deadline


def export(comps, out: Path, meta: dict) -> None:
    """Write ``comps`` as a diffusers folder (fp32, DDIM: what a plain ``from_pretrained`` renders with) and
    ``pretrain.json``."""
    save_as_pipeline(comps, str(out))
    (out / "pretrain.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def snapshot(unet_stage: Stage, comps, args, state: dict, argv: list[str] | None) -> Path:
    """Export the EMA of the work folder's last UNet checkpoint to ``args.snapshot`` (the run is not touched)."""
    unet_stage.load(args.work)
    unet_stage.load_weights(unet_stage.ema)
    meta = {"command": "python -m stickworld.pretrain " + shlex.join(sys.argv[1:] if argv is None else argv),
            "snapshot_of_step": state["unet"], "settings": state["settings"],
            "weights": "EMA (decay 0.999) of the UNet and text encoder at that step; VAE as trained"}
    export(comps, args.snapshot, meta)
    print(args.snapshot)
    return args.snapshot


def load_init(folder: str):
    """Components of an earlier export, in fp32 and trainable, to continue pretraining from."""
    comps = load_components(folder)
    for module in (comps.text_encoder, comps.unet):
        module.requires_grad_(True)
    return comps


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True, help="checkpoint folder (resumed when it exists)")
    p.add_argument("--out", type=Path, required=True, help="diffusers folder to export when training ends")
    p.add_argument("--vae-steps", type=int, default=3000)
    p.add_argument("--unet-steps", type=int, default=4500)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--unet-batch", type=int, default=32)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--unet-lr", type=float, default=8e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--stop-after", type=float, default=None, help="exit (resumably) after this many minutes")
    p.add_argument("--overwrite", action="store_true", help="replace a model already at --out")
    p.add_argument("--snapshot", type=Path, default=None,
                   help="export the EMA of --work's last UNet checkpoint to this folder and exit (give the run's own "
                        "options; the run itself is untouched and resumes as before): measure a run midway")
    p.add_argument("--init", type=str, default=None,
                   help="continue from this diffusers folder (an earlier export): its VAE is kept (no VAE stage), "
                        "its UNet and text encoder start the UNet stage, with a fresh optimizer and schedule")
    p.add_argument("--captions", choices=("known", "grammar"), default=None,
                   help="training distribution: known actions by name (default), or the pose-grammar mixture "
                        "(known actions by name, free poses by their units, actors, scenes: base model 2)")
    p.add_argument("--min-snr-gamma", type=float, default=None, help="Min-SNR loss weighting (e.g. 5)")
    p.add_argument("--prediction-type", choices=("epsilon", "v_prediction"), default=None,
                   help="what the UNet predicts (default: epsilon, or the --init model's); switching an --init "
                        "model to v_prediction retrains its output")
    args = p.parse_args(argv)
    target = args.snapshot or args.out
    if (target / "model_index.json").is_file() and not args.overwrite:
        raise SystemExit(f"{target} already holds a model; give another folder (e.g. runs/stickworld/v0) or "
                         "--overwrite to replace it.")
    args.lr = {"vae": args.vae_lr, "unet": args.unet_lr}
    torch.set_flush_denormal(True)
    state_path = args.work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if args.snapshot and not state.get("unet"):  # before anything could train (an unfinished VAE stage would)
        raise SystemExit(f"{args.work} has no UNet checkpoint yet; nothing to snapshot.")
    args.work.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items()
                if k not in ("work", "out", "stop_after", "lr", "overwrite", "snapshot")}
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}
    def given(d: dict) -> dict:  # options left at None do not count, so adding an option keeps old runs resumable
        return {k: v for k, v in d.items() if v is not None}

    if given(state.get("settings", settings)) != given(settings):
        raise SystemExit(f"{args.work} was started with other settings ({state['settings']}); resume with those "
                         "or give a new --work folder.")
    state["settings"] = settings
    args.deadline = None if args.stop_after is None else time.time() + 60 * args.stop_after
    base_seconds, began = state.get("seconds", 0.0), time.time()
    args.clock = lambda: base_seconds + time.time() - began
    comps = base_model.build(args.seed) if args.init is None else load_init(args.init)
    if args.prediction_type:  # exported with the model: the pipeline's sampler reads it from the scheduler config
        comps.noise_scheduler = DDPMScheduler.from_config(comps.noise_scheduler.config,
                                                          prediction_type=args.prediction_type)
    comps.text_encoder.train()
    gen = torch.Generator()

    try:
        vae_stage = Stage("vae", {"vae": comps.vae}, args.vae_lr, ema=False)

        def vae_step(step):
            return vae_loss(comps.vae, batch(args.seed, "vae", step, args.vae_batch)[0])

        if args.init:  # the VAE (and its scale) come with the initial model
            state.setdefault("scaling_factor", comps.vae.config.scaling_factor)
        elif state.get("vae", 0) < args.vae_steps:
            run_stage(vae_stage, args.work, state, args.vae_steps, args, vae_step)
        else:
            vae_stage.load_weights(load_file(str(args.work / "vae.safetensors")))
        if "scaling_factor" not in state:
            state["scaling_factor"] = latent_scale(comps.vae, args.seed)
            state_path.write_text(json.dumps(state, indent=1))
        comps.vae.register_to_config(scaling_factor=state["scaling_factor"])
        comps.vae.requires_grad_(False).eval()

        unet_stage = Stage("unet", {"unet": comps.unet, "text_encoder": comps.text_encoder}, args.unet_lr, ema=True)
        if args.snapshot:
            return snapshot(unet_stage, comps, args, state, argv)

        def unet_step(step):
            x, captions = batch(args.seed, "unet", step, args.unet_batch, drop=0.1, captions=args.captions)
            gen.manual_seed(args.seed * 1_000_003 + step)
            return unet_loss(comps, x, captions, gen, args.min_snr_gamma)

        run_stage(unet_stage, args.work, state, args.unet_steps, args, unet_step)
    except Deadline:
        print(f"stopped after {args.stop_after} min; rerun the same command to resume", flush=True)
        return args.out
    unet_stage.load_weights(unet_stage.ema)
    meta = {"command": "python -m stickworld.pretrain " + shlex.join(sys.argv[1:] if argv is None else argv),
            "settings": settings, "scaling_factor": state["scaling_factor"], "train_seconds": round(state["seconds"]),
            "weights": "EMA (decay 0.999) of the UNet and text encoder; VAE as trained",
            "torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.init:  # how the starting weights were made, so the chain of commands stays on record
        meta["init"] = json.loads((Path(args.init) / "pretrain.json").read_text())
    export(comps, args.out, meta)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
