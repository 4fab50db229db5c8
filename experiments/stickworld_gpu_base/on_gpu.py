"""Run G on a lent GPU: continue the committed round-3 export (run F) for as many steps as fit in a time budget.

The step count is fixed before the run (the cosine schedule needs it) from a 200-step probe of the same command,
so the schedule ends inside the lease instead of being cut short. Everything the run needs besides the repo's
code is the committed ``round3/runF_model``; what comes back is the new UNet (the VAE and the text tower are frozen,
so they are run F's), the logs and ``pretrain.json``.

    python experiments/stickworld_gpu_base/on_gpu.py --budget 420 --batch 256 --out $OUT
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

INIT = Path("experiments/stickworld_cpu_base/round3/runF_model")
CLIP = "stickworld/data/clip"
PART = 15 * 2**20  # what the lease hands back is at most 16 MiB a file


def pretrain(work: Path, out: Path, steps: int, args, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "stickworld.pretraining.pretrain", "--work", str(work), "--out", str(out),
           "--init", str(INIT), "--text-from", CLIP, "--unet-steps", str(steps), "--unet-batch", str(args.batch),
           "--unet-lr", str(args.lr), "--warmup", str(min(200, steps // 10)), "--prediction-type", "v_prediction",
           "--canonical-ramp", "0", "--canonical-floor", "0.5", "--figure-weight", "4", "--seed", "3",
           "--device", args.device, "--workers", str(args.workers), *extra]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return cmd


def restore_text_encoder() -> None:
    """run F's text encoder is the CLIP's text tower (frozen): rebuilt here rather than sent (the lease's size)."""
    target = INIT / "text_encoder"
    if (target / "model.safetensors").is_file():
        return
    from transformers import CLIPTokenizer

    from stickworld.networks.base_model import text_encoder_from_clip

    text = text_encoder_from_clip(CLIP, CLIPTokenizer.from_pretrained(str(INIT / "tokenizer")))
    text.save_pretrained(str(target))


def steady_seconds_per_step(work: Path) -> float:
    """The last window's: the first holds the warm-up, and the early steps read batches the workers drew ahead
    during it, which would hide a drawing-bound run."""
    rows = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    return rows[-1]["s_per_step"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, required=True, help="seconds of training for run G")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--workers", type=int, default=14)
    p.add_argument("--device", default="cuda")
    p.add_argument("--probe-steps", type=int, default=200)
    p.add_argument("--max-steps", type=int, default=20000)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scratch", type=Path, default=Path("/tmp/runG"))
    args = p.parse_args()
    began = time.time()
    restore_text_encoder()
    shutil.rmtree(args.scratch, ignore_errors=True)
    probe = args.scratch / "probe"
    pretrain(probe / "work", probe / "model", args.probe_steps, args, ["--log-every", str(args.probe_steps // 4),
                                                                       "--ckpt-every", "1000000"])
    per_step = steady_seconds_per_step(probe / "work")
    steps = int(min(args.max_steps, args.budget / per_step))
    steps -= steps % 50
    print(json.dumps({"probe_s_per_step": per_step, "steps": steps, "setup_s": time.time() - began}), flush=True)
    work, model = args.scratch / "work", args.scratch / "model"
    pretrain(work, model, steps, args, ["--log-every", "50", "--ckpt-every", "500",
                                        "--stop-after", str((args.budget * 1.25) / 60)])
    if not (model / "model_index.json").is_file():  # the deadline cut it: the EMA of the last checkpoint
        pretrain(work, model, steps, args, ["--log-every", "50", "--ckpt-every", "500", "--snapshot", str(model)])
    args.out.mkdir(parents=True, exist_ok=True)
    weights = (model / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    for i in range(0, len(weights), PART):
        (args.out / f"unet.safetensors.part{i // PART}").write_bytes(weights[i:i + PART])
    for name in ("unet/config.json", "pretrain.json"):
        shutil.copy(model / name, args.out / Path(name).name.replace("config", "unet_config"))
    shutil.copy(work / "log.jsonl", args.out / "log.jsonl")
    vae = "vae/diffusion_pytorch_model.safetensors"  # frozen: must come back as it went
    same = (model / vae).read_bytes() == (INIT / vae).read_bytes()
    summary = {"probe_s_per_step": per_step, "steps": steps, "unet_sha256": hashlib.sha256(weights).hexdigest(),
               "vae_unchanged": same, "wall_s": time.time() - began}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
