"""Sharpen the StickWorld VAE's decoder while the UNet trains: the encoder (so the latent space) stays fixed.

``python -m stickworld.pretraining.decoder_finetune --vae-from runs/stickworld/work --work runs/stickworld/decoder_work
--into runs/stickworld/model`` waits for the pretraining run's VAE phase to finish, then trains only the decoder
(and its post-quantisation conv) to reconstruct fresh drawings from the frozen encoder's posterior means, with the
same edge-weighted loss (:func:`stickworld.pretraining.objectives.vae_loss`). The UNet is trained on the encoder's
latents, so a better decoder changes nothing it learnt; it only decodes the latents it generates more sharply (Stable
Diffusion's ft-MSE decoder is the same idea). On the 2-core machine it runs on the second core beside the UNet phase,
so its time is free (the committed ``experiments/stickworld_cpu_base/vae`` was made so).

``--into`` then waits for the pretraining export and writes the decoder into it (``<model>/vae``), recording the
command in its ``pretrain.json``. Resumable like pretraining: every batch is a function of (``--seed``, step).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file

from stickworld.networks import base_model
from stickworld.pretraining.objectives import vae_loss
from stickworld.pretraining.phases import Phase
from stickworld.pretraining.pretrain import run_phase
from stickworld.pretraining.pretrain_data import StepBatches, model_range

POLL_SECONDS = 30


def wait_for(path: Path, ready, what: str, wait: bool) -> None:
    """Return once ``ready(path)`` holds; without ``wait`` say what is missing and stop."""
    while not ready(path):
        if not wait:
            raise SystemExit(f"{path}: {what} is not there yet; run the pretraining first, or give --wait.")
        time.sleep(POLL_SECONDS)


def vae_phase_done(work: Path) -> bool:
    state_path = work / "state.json"
    if not state_path.is_file():
        return False
    state = json.loads(state_path.read_text())
    return "scaling_factor" in state and state.get("vae", 0) >= state["settings"]["vae_steps"]


def decoder_modules(vae: AutoencoderKL) -> dict[str, torch.nn.Module]:
    vae.requires_grad_(False)
    modules = {"decoder": vae.decoder, "post_quant_conv": vae.post_quant_conv}
    for m in modules.values():
        m.requires_grad_(True)
    return modules


def install(vae: AutoencoderKL, model: Path, command: str, steps: int) -> None:
    """Write ``vae`` (the fine-tuned decoder) into exported model folder ``model`` and record how."""
    old = AutoencoderKL.from_pretrained(str(model / "vae"))
    vae.register_to_config(scaling_factor=old.config.scaling_factor)
    for name, p in old.encoder.state_dict().items():  # the export's encoder is the one the UNet learnt on
        if not torch.equal(p, vae.encoder.state_dict()[name]):
            raise SystemExit(f"{model}/vae has another encoder than --vae-from's; give the matching folders.")
    vae.save_pretrained(str(model / "vae"))
    meta_path = model / "pretrain.json"
    meta = json.loads(meta_path.read_text())
    meta["decoder_finetune"] = {"command": command, "steps": steps}
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae-from", type=Path, required=True, help="the pretraining run's --work folder")
    p.add_argument("--work", type=Path, required=True, help="this run's checkpoint folder (resumed when it exists)")
    p.add_argument("--into", type=Path, default=None, help="the pretraining run's --out folder, to write into")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--edge-weight", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--wait", action="store_true", help="wait for the VAE phase and the export instead of stopping")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python -m stickworld.pretraining.decoder_finetune " + shlex.join(sys.argv[1:] if argv is None else argv)
    wait_for(args.vae_from, vae_phase_done, "a finished VAE phase", args.wait)
    vae = base_model.build_vae()
    vae.load_state_dict({k[len("vae."):]: v for k, v in load_file(str(args.vae_from / "vae.safetensors")).items()})
    args.work.mkdir(parents=True, exist_ok=True)
    state_path = args.work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    settings = {k: v for k, v in vars(args).items() if k in ("steps", "batch", "lr", "warmup", "edge_weight", "seed")}
    if state.setdefault("settings", settings) != settings:
        raise SystemExit(f"{args.work} was started with other settings ({state['settings']}); resume with those.")
    phase = Phase("decoder", decoder_modules(vae), args.lr, ema=False)
    began, base_seconds = time.time(), state.get("seconds", 0.0)
    run_args = SimpleNamespace(lr={"decoder": args.lr}, warmup=args.warmup, workers=0, device=torch.device("cpu"),
                               log_every=args.log_every, ckpt_every=args.ckpt_every, deadline=None,
                               clock=lambda: base_seconds + time.time() - began)
    if state.get("decoder", 0) < args.steps:
        run_phase(phase, args.work, state, args.steps, run_args,
                  lambda step, item: vae_loss(vae, model_range(item["pixels"]), edge_weight=args.edge_weight),
                  lambda a, b: StepBatches(args.seed, "decoder", a, b, args.batch))
    else:
        phase.load_weights(load_file(str(args.work / "decoder.safetensors")))
    if args.into is not None:
        wait_for(args.into, lambda m: (m / "model_index.json").is_file(), "the pretraining export", args.wait)
        install(vae, args.into, command, args.steps)
        print(args.into)
    return args.work


if __name__ == "__main__":
    main()
