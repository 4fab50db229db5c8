"""Step time of a real twinact run against a bare PyTorch loop on the same model, batch and resolution.

`python -m benchmarks.speed --model tiny --batch-size 4 --steps 20` runs each side in its own process (so peak
memory and start-up are each its own) and prints one JSON line per side plus their ratio. The bare loop is the same step
written as plain PyTorch (placeholder MLPs, text encoder, UNet with LoRA, backward, AdamW on precomputed inputs), so
the ratio is the framework's overhead: Lightning, the data stream, logging, gradient clipping.
The twinact side is `train()` itself, in stage 2 (MLPs + LoRA), without the similarity loss (its extra decode and
image-encoder pass only runs on t > 800 samples late in a stage).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _compose(overrides: list[str]):
    # twinact is imported inside the measuring functions: each side runs in its own process, and the bare side's peak
    # memory must not include the Lightning training stack it does not use.
    from twinact.config.compose import compose_config

    return compose_config(overrides)


def twinact_overrides(args) -> list[str]:
    return [
        f"model={args.model}", f"data.batch_size={args.batch_size}", f"data.resolution={args.resolution}",
        f"trainer.precision={args.precision}", f"trainer.gradient_checkpointing={args.gradient_checkpointing}",
        f"lora.rank={args.rank}", "method.stage1.steps=1", f"method.stage2.steps={args.warmup + args.steps}",
        "method.similarity_weight=0", "logger=none", "export=false", "sample_at_end=false",
        "callbacks.samples_every_n_steps=0", "callbacks.checkpoint_every_n_steps=100000",
        "trainer.enable_progress_bar=false", f"run_dir={args.run_dir}",
    ]


def measure_twinact(args) -> dict:
    from twinact.train.callbacks import StepTimer
    from twinact.train.training import train

    result = train(_compose(twinact_overrides(args)))
    timer = next(cb for cb in result.trainer.callbacks if isinstance(cb, StepTimer))
    steady = timer.step_times[1 + args.warmup:]  # skip the stage-1 step and the warm-up
    return {"step_s": statistics.median(steady), "startup_s": timer.startup_s,
            "peak_mem_gib": peak_memory_gib(result.module.device)}


def measure_bare(args) -> dict:
    """The same step as bare PyTorch: placeholder MLPs -> text encoder -> UNet with LoRA -> MSE -> backward -> AdamW,
    on fixed precomputed inputs; no Lightning, data pipeline, logging or gradient clipping."""
    from torch.utils.flop_counter import FlopCounterMode

    from twinact.config.schema import typed
    from twinact.method.assembly import build_module
    from twinact.method.data import load_exemplars
    from twinact.model.conditioning import added_conditioning, encode_captions
    from twinact.model.models import load_model
    from twinact.train.training import build_recipe

    cfg = _compose(twinact_overrides(args))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_flush_denormal(True)  # as train() does
    comps = load_model(typed("model", cfg.model), args.precision)
    module = build_module(build_recipe(cfg), comps, load_exemplars(cfg.action.image_dir, args.resolution)).module
    module.to(device)
    unet = comps.unet
    params = [p for p in module.vectors.parameters() if p.requires_grad] + module.lora_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4)
    b, size = args.batch_size, args.resolution // comps.vae_scale_factor
    x = torch.randn(b, 4, size, size, device=device)
    t = torch.randint(0, 1000, (b,), device=device)
    captions = ["a figure <a1> <a2> <a3>"] * b
    ids = torch.full((b, 6), float(args.resolution), device=device)
    autocast = args.precision.endswith("mixed") and args.precision.startswith(("bf16", "16"))
    amp_dtype = torch.bfloat16 if args.precision.startswith("bf16") else torch.float16

    def step():
        with torch.autocast(device.type, dtype=amp_dtype, enabled=autocast):
            hidden, pooled = encode_captions(comps, captions, device)
            added = added_conditioning(pooled, ids, unet.dtype)
            pred = unet(x.to(unet.dtype), t, hidden.to(unet.dtype), added_cond_kwargs=added).sample
        loss = torch.nn.functional.mse_loss(pred.float(), x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    flops = FlopCounterMode(display=False)
    with flops:
        step()
    times = []
    for _ in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times[args.warmup:])
    return {"step_s": step_s, "peak_mem_gib": peak_memory_gib(device), "tflop_per_step": flops.get_total_flops() / 1e12,
            "tflops": flops.get_total_flops() / 1e12 / step_s}


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}"


def markdown_table(rows: list[dict]) -> str:
    """The results file as the README's table."""
    head = ("| model | batch x px | precision | grad ckpt | twinact s/step | bare s/step | ratio | start-up s "
            "| peak mem GiB (twinact / bare) | TFLOP/s | machine |\n|" + " --- |" * 11)
    lines = [head]
    for r in rows:
        tw, bare = r["twinact"], r["bare"]
        lines.append(
            f"| {r['model']} | {r['batch_size']} x {r['resolution']} | {r['precision']} | "
            f"{'yes' if r['gradient_checkpointing'] else 'no'} | {tw['step_s']:.3f} | {bare['step_s']:.3f} | "
            f"{r['ratio']:.2f} | {tw['startup_s']:.1f} | {tw['peak_mem_gib']:.2f} / {bare['peak_mem_gib']:.2f} | "
            f"{bare['tflops']:.3f} | {r['machine']} |")
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny", help="a conf/model option (tiny, tiny_xl, sd15_random, sdxl_random)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--precision", default="32-true")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--steps", type=int, default=20, help="measured steps (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--mode", choices=["both", "twinact", "bare"], default="both")
    p.add_argument("--run-dir", default="runs/benchmark/run")
    p.add_argument("--out", default=None, help="append the result row (JSON lines) to this file")
    p.add_argument("--table", default=None, help="print a results file as a markdown table and exit")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse(argv)
    if args.table:
        print(markdown_table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line]))
        return {}
    if args.mode != "both":
        result = (measure_twinact if args.mode == "twinact" else measure_bare)(args)
        print("BENCH " + json.dumps(result), flush=True)
        return result
    sides = {}
    passed = list(sys.argv[1:] if argv is None else argv)
    for mode in ("bare", "twinact"):
        cmd = [sys.executable, "-m", "benchmarks.speed", *passed, "--mode", mode]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")]
        if out.returncode or not lines:
            raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
        sides[mode] = json.loads(lines[-1][6:])
    row = {"model": args.model, "batch_size": args.batch_size, "resolution": args.resolution, "rank": args.rank,
           "precision": args.precision, "gradient_checkpointing": args.gradient_checkpointing, "machine": machine(),
           "twinact": sides["twinact"], "bare": sides["bare"],
           "ratio": sides["twinact"]["step_s"] / sides["bare"]["step_s"]}
    print(json.dumps(row, indent=2))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    return row


if __name__ == "__main__":
    main()
