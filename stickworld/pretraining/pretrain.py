"""Pretrain the StickWorld base model (:mod:`stickworld.networks.base_model`) on the pretraining mixture.

``python -m stickworld.pretraining.pretrain --work runs/stickworld/work --out runs/stickworld/model`` trains in two
phases, each resumable at any checkpoint (``make stickworld`` runs the recipe that made the shipped model,
``stickworld/data/base``; its ``pretrain.json`` records the command):

1. the VAE (edge-weighted L1 + MSE reconstruction of the posterior mean, a tiny KL), then its latent scale (1 / std
   of latents, as SD's 0.18215);
2. the UNet and the text encoder together on the frozen VAE's latents (noise- or v-prediction MSE, 10% of captions
   dropped so classifier-free guidance works), with an EMA of both that is what gets exported. The training images
   are the mixture of :mod:`stickworld.pretraining.mixture`: known actions by name, held-out and free poses by their
   units, never a held-out action's name.

Every batch is drawn fresh from a seed derived from (``--seed``, phase, step)
(:mod:`stickworld.pretraining.pretrain_data`), so a resumed run sees exactly the batches an unbroken one would, with any
number of ``--workers`` drawing them, and there is no training set to memorise. Held-out actions never appear. The
work folder holds ``state.json``, safetensors checkpoints (weights, EMA, optimizer moments) and ``log.jsonl``; the
export is a plain diffusers folder (fp32 weights, the DDIM sampler) plus ``pretrain.json`` (command, steps, timings,
where each part ran).

``--device cuda`` trains on a GPU, under bf16 autocast by default (trainable weights and the EMA stay fp32; the
noise and timesteps are still generated on the CPU, so they are those of a CPU run). Device, precision and workers say
how a run is computed, not what it learns from, so a run may be resumed with other ones; each call is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler
from safetensors.torch import load_file

from stickworld.networks import base_model
from stickworld.pretraining import mixture
from stickworld.pretraining.objectives import autocast, latent_scale, unet_loss, vae_loss
from stickworld.pretraining.phases import Phase
from stickworld.pretraining.pretrain_data import StepBatches, iterate, model_range, tokenizer_fn
from twinact.model.models import load_base_model
from twinact.release.sampling import save_as_pipeline

# Settings that say how a run is computed, not what it learns: a run can be resumed with other ones.
RUNTIME = ("device", "precision", "workers", "threads")


def command_line(argv: list[str] | None) -> str:
    return "python -m stickworld.pretraining.pretrain " + shlex.join(sys.argv[1:] if argv is None else argv)


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% of ``peak``: a function of the step alone, so resume is exact."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _log(work: Path, record: dict) -> None:
    with open(work / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


class Deadline(Exception):
    """Raised after a checkpoint once ``--stop-after`` minutes have passed."""


def run_phase(phase: Phase, work: Path, state: dict, total: int, args, step_fn, data) -> None:
    """Train ``phase`` from ``state[phase.name]`` to ``total`` steps, checkpointing every ``args.ckpt_every``.

    Args:
        step_fn: (step, batch item) -> loss.
        data: (first step, stop) -> the :class:`StepBatches` of those steps.
    """
    start = state.get(phase.name, 0)
    if start:
        phase.load(work)
    items = iterate(data(start, total), args.workers, pin_memory=args.device.type == "cuda")
    window, t0 = [], time.time()
    try:
        for step, item in zip(range(start, total), items):
            assert item["step"] == step, (item["step"], step)  # the loader must keep the step order
            for group in phase.opt.param_groups:
                group["lr"] = lr_at(step, total, args.lr[phase.name], args.warmup)
            loss = step_fn(step, item)
            phase.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(phase.params, 1.0)
            phase.opt.step()
            phase.update_ema(step)
            window.append(loss.detach())  # read back at logging only: a read per step would stall a GPU
            done = step + 1
            if done % args.log_every == 0 or done == total:
                _log(work, {"phase": phase.name, "step": done, "loss": float(np.mean([float(x) for x in window])),
                            "lr": phase.opt.param_groups[0]["lr"], "s_per_step": (time.time() - t0) / len(window)})
                window, t0 = [], time.time()
            if done % args.ckpt_every == 0 or done == total:
                phase.save(work)
                state[phase.name] = done
                state["seconds"] = args.clock()
                (work / "state.json").write_text(json.dumps(state, indent=1))
                if args.deadline and time.time() > args.deadline and done < total:
                    raise Deadline
    finally:
        del items  # stops the drawing workers now, not when the traceback of a Deadline is dropped


def export(comps, out: Path, meta: dict) -> None:
    """Write ``comps`` as a diffusers folder (fp32, DDIM: what a plain ``from_pretrained`` renders with) and
    ``pretrain.json``."""
    for module in (comps.text_encoder, comps.vae, comps.unet):
        module.to("cpu")  # written from the CPU whatever the device: the files are the same either way
    save_as_pipeline(comps, str(out))
    (out / "pretrain.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def snapshot(unet_phase: Phase, comps, args, state: dict, argv: list[str] | None) -> Path:
    """Export the EMA of the work folder's last UNet checkpoint to ``args.snapshot`` (the run is not touched)."""
    unet_phase.load(args.work)
    unet_phase.load_weights(unet_phase.ema)
    meta = {"command": command_line(argv), "snapshot_of_step": state["unet"], "settings": state["settings"],
            "weights": "EMA (decay 0.999) of the UNet and text encoder at that step; VAE as trained"}
    export(comps, args.snapshot, meta)
    print(args.snapshot)
    return args.snapshot


def load_init(folder: str):
    """BaseModel of an earlier export, in fp32 and trainable, to continue pretraining from."""
    comps = load_base_model(folder)
    for module in (comps.text_encoder, comps.unet):
        module.requires_grad_(True)
    return comps


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True, help="checkpoint folder (resumed when it exists)")
    p.add_argument("--out", type=Path, required=True, help="diffusers folder to export when training ends")
    p.add_argument("--vae-steps", type=int, default=3000)
    p.add_argument("--unet-steps", type=int, default=4500)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--unet-batch", type=int, default=32)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--unet-lr", type=float, default=8e-4)
    p.add_argument("--vae-edge-weight", type=float, default=0.0,
                   help="weight of pixels near edges in the VAE loss: 1 + this x |image - its 5 px box blur|")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--stop-after", type=float, default=None,
                   help="exit (resumably) at the first checkpoint after this many minutes")
    p.add_argument("--overwrite", action="store_true", help="replace a model already at --out")
    p.add_argument("--snapshot", type=Path, default=None,
                   help="export the EMA of --work's last UNet checkpoint to this folder and exit (give the run's own "
                        "options; the run itself is untouched and resumes as before): measure a run midway")
    p.add_argument("--init", type=str, default=None,
                   help="continue from this diffusers folder (an earlier export): its VAE is kept (no VAE phase), "
                        "its UNet and text encoder start the UNet phase, with a fresh optimizer and schedule")
    p.add_argument("--captions", choices=("mixture", "known"), default="mixture",
                   help="training distribution: the pretraining mixture (known actions by name, held-out and free "
                        "poses by their units, actors, scenes; stickworld.pretraining.mixture), or known actions by "
                        "name only")
    p.add_argument("--max-units-schedule", default=None,
                   help="with --captions mixture, how many parts a free pose moves from which step on, e.g. "
                        "'0:1-2,3000:2-5' (default: 2-5 throughout)")
    p.add_argument("--canonical-ramp", type=int, default=None,
                   help="UNet steps over which canonical takes (pose unjittered, centred) go from all to "
                        "--canonical-floor of the mixture (0: --canonical-floor throughout); default: none")
    p.add_argument("--canonical-floor", type=float, default=None, help="share of canonical takes after the ramp "
                   "(default 0.1 with --canonical-ramp)")
    p.add_argument("--vae-from", type=Path, default=None,
                   help="a trained VAE's diffusers folder (with its scaling_factor): skips the VAE phase")
    p.add_argument("--text-from", type=Path, default=None,
                   help="a StickWorld CLIP folder: its text tower, frozen, is the text encoder (also over --init's; "
                        "held-out-only words zeroed); default: a text encoder trained with the UNet")
    p.add_argument("--figure-weight", type=float, default=None,
                   help="weight the UNet loss by 1 + this x the figure's edges in each latent cell (e.g. 4)")
    p.add_argument("--min-snr-gamma", type=float, default=None, help="Min-SNR loss weighting (e.g. 5)")
    p.add_argument("--prediction-type", choices=("epsilon", "v_prediction"), default=None,
                   help="what the UNet predicts (default: epsilon, or the --init model's); switching an --init "
                        "model to v_prediction retrains its output")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (a GPU)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                   help="bf16 autocast for the forward passes (default: bf16 on cuda, fp32 on cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes drawing batches ahead (0: in this process); batches are the same either way")
    args = p.parse_args(argv)
    args.device = torch.device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device} asked for a GPU, but torch {torch.__version__} sees none; "
                         "use --device cpu.")
    args.precision = args.precision or ("bf16" if args.device.type == "cuda" else "fp32")
    args.schedule = None
    if args.max_units_schedule is not None:
        if args.captions != "mixture":
            raise SystemExit("--max-units-schedule shapes the free poses of the mixture; give it with --captions "
                             "mixture.")
        try:
            args.schedule = mixture.parse_units_schedule(args.max_units_schedule)
        except ValueError as e:
            raise SystemExit(str(e)) from None
    if args.canonical_floor is not None and args.canonical_ramp is None:
        raise SystemExit("--canonical-floor is the share after --canonical-ramp; give --canonical-ramp too "
                         "(--canonical-ramp 0 keeps the floor throughout).")
    if args.canonical_ramp is not None:
        if args.captions != "mixture":
            raise SystemExit("--canonical-ramp shapes the takes of the mixture; give it with --captions mixture.")
        args.canonical_floor = 0.1 if args.canonical_floor is None else args.canonical_floor
        if not 0.0 <= args.canonical_floor <= 1.0:
            raise SystemExit(f"--canonical-floor {args.canonical_floor} is a share: give 0 to 1, e.g. 0.1.")
    for flag, folder, holds, example in (("--vae-from", args.vae_from, "VAE", "experiments/stickworld_cpu_base/vae"),
                                         ("--text-from", args.text_from, "CLIP", "stickworld/data/clip")):
        if folder is not None and not (folder / "config.json").is_file():
            raise SystemExit(f"{flag} {folder} holds no {holds} (config.json); give one's folder, e.g. {example}.")
    if args.vae_from is not None and args.init is not None:  # a frozen text tower may replace --init's encoder
        raise SystemExit("--init brings its own VAE; give --vae-from or --init, not both.")
    args.lr = {"vae": args.vae_lr, "unet": args.unet_lr}
    return args


def run_settings(args, state: dict) -> dict:
    """The options that fix what a run learns, checked against those ``state`` was started with."""
    skip = ("work", "out", "stop_after", "lr", "overwrite", "snapshot", "schedule", *RUNTIME)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in skip}

    def given(d: dict) -> dict:  # options left at None do not count, so adding an option keeps old runs resumable
        return {k: v for k, v in d.items() if v is not None}

    if given(state.get("settings", settings)) != given(settings):
        raise SystemExit(f"{args.work} was started with other settings ({state['settings']}); resume with those "
                         "or give a new --work folder.")
    return settings


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    target = args.snapshot or args.out
    if (target / "model_index.json").is_file() and not args.overwrite:
        raise SystemExit(f"{target} already holds a model; give another folder (e.g. runs/stickworld/v0) or "
                         "--overwrite to replace it.")
    torch.set_flush_denormal(True)
    if args.threads:
        torch.set_num_threads(args.threads)
    state_path = args.work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if args.snapshot and not state.get("unet"):  # before anything could train (an unfinished VAE phase would)
        raise SystemExit(f"{args.work} has no UNet checkpoint yet; nothing to snapshot.")
    args.work.mkdir(parents=True, exist_ok=True)
    settings = state["settings"] = run_settings(args, state)
    args.deadline = None if args.stop_after is None else time.time() + 60 * args.stop_after
    base_seconds, began = state.get("seconds", 0.0), time.time()
    args.clock = lambda: base_seconds + time.time() - began
    comps = base_model.build(args.seed) if args.init is None else load_init(args.init)
    if args.text_from:
        comps.text_encoder = base_model.text_encoder_from_clip(str(args.text_from), comps.tokenizer)
        comps.text_encoder.requires_grad_(False)
    if args.prediction_type:  # exported with the model: the pipeline's sampler reads it from the scheduler config
        comps.noise_scheduler = DDPMScheduler.from_config(comps.noise_scheduler.config,
                                                          prediction_type=args.prediction_type)
    if args.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # fp32 parts: TF32 is ample
        torch.backends.cudnn.benchmark = True  # one input shape per phase
    for module in (comps.text_encoder, comps.vae, comps.unet):
        module.to(args.device)
    comps.text_encoder.train(not args.text_from)
    if args.workers:  # the tokenizer runs in forked workers; its own threads would be copied mid-flight
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not args.snapshot:
        state.setdefault("calls", []).append({k: str(getattr(args, k)) for k in RUNTIME}
                                             | {"from": {k: state.get(k, 0) for k in ("vae", "unet")}})
    try:
        return train(comps, args, state, settings, argv)
    except Deadline:
        print(f"stopped after {args.stop_after} min; rerun the same command to resume", flush=True)
        return args.out


def train(comps, args, state: dict, settings: dict, argv: list[str] | None) -> Path:
    """Both phases (or the UNet phase alone after ``--init``), then the export; a snapshot instead when asked."""
    dev, cast, gen = args.device, autocast(args.device, args.precision), torch.Generator()
    vae_phase = Phase("vae", {"vae": comps.vae}, args.vae_lr, ema=False)

    def vae_step(step, item):
        return vae_loss(comps.vae, model_range(item["pixels"].to(dev, non_blocking=True)), cast, args.vae_edge_weight)

    if args.vae_from:
        given = AutoencoderKL.from_pretrained(str(args.vae_from))
        comps.vae.load_state_dict(given.state_dict())
        state.setdefault("scaling_factor", given.config.scaling_factor)
    elif args.init:  # the VAE (and its scale) come with the initial model
        state.setdefault("scaling_factor", comps.vae.config.scaling_factor)
    elif state.get("vae", 0) < args.vae_steps:
        run_phase(vae_phase, args.work, state, args.vae_steps, args, vae_step,
                  lambda a, b: StepBatches(args.seed, "vae", a, b, args.vae_batch))
    else:
        vae_phase.load_weights(load_file(str(args.work / "vae.safetensors")))
    if "scaling_factor" not in state:
        state["scaling_factor"] = latent_scale(comps.vae, args.seed)
        (args.work / "state.json").write_text(json.dumps(state, indent=1))
    comps.vae.register_to_config(scaling_factor=state["scaling_factor"])
    comps.vae.requires_grad_(False).eval()

    learners = {"unet": comps.unet} | ({} if args.text_from else {"text_encoder": comps.text_encoder})
    unet_phase = Phase("unet", learners, args.unet_lr, ema=True)
    if args.snapshot:
        return snapshot(unet_phase, comps, args, state, argv)

    def unet_step(step, item):
        gen.manual_seed(args.seed * 1_000_003 + step)
        x = model_range(item["pixels"].to(dev, non_blocking=True))
        return unet_loss(comps, x, item["ids"].to(dev, non_blocking=True), gen, args.min_snr_gamma, cast,
                         args.figure_weight or 0.0)

    run_phase(unet_phase, args.work, state, args.unet_steps, args, unet_step,
              lambda a, b: StepBatches(args.seed, "unet", a, b, args.unet_batch, drop=0.1, captions=args.captions,
                                       schedule=args.schedule, tokenize=tokenizer_fn(comps.tokenizer),
                                       canonical=None if args.canonical_ramp is None else
                                       (args.canonical_ramp, args.canonical_floor)))
    unet_phase.load_weights(unet_phase.ema)
    text = f"; text encoder: {args.text_from}'s text tower, frozen" if args.text_from else " and text encoder"
    meta = {"command": command_line(argv), "settings": settings, "scaling_factor": state["scaling_factor"],
            "train_seconds": round(state["seconds"]),
            "weights": f"EMA (decay 0.999) of the UNet{text}; VAE as trained",
            "torch": torch.__version__, "threads": torch.get_num_threads(), "calls": state["calls"]}
    if dev.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(dev)
        meta["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(dev)
    if args.init:  # how the starting weights were made, so the chain of commands stays on record
        meta["init"] = json.loads((Path(args.init) / "pretrain.json").read_text())
    export(comps, args.out, meta)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
