"""One prepared GPU run of base model 2: pretraining on the pose grammar within a time budget, then the gates and the
``units_single`` diagnostic on a subset, with timings, all written under ``--out``.

What comes back from the GPU machine is at most 8 files of at most 16 MiB, so ``--out`` holds only: the exported
model as ``model.tar.gz.00``, ``.01``, ... (15 MiB parts), ``gpu_run.json`` (environment, the pretraining command,
wall time, steps/s, peak GPU memory, the readings' headline), ``quality.json``, ``sheet.png`` and the pretraining
``log.jsonl``. Checkpoints stay in ``--scratch``: a rerun with the same scratch folder resumes them.

Here, once: the GPU image lacks a few pure-Python packages (diffusers, omegaconf, hydra and their kin) and the CLIP
tokenizer files, and nothing can be fetched there::

    python -m stickworld.gpu_run deps runs/gpu_deps.tar.gz

On the GPU machine (carrying ``runs/gpu_deps.tar.gz``; ``--minutes`` bounds the training, the reading adds ~1-2 min)::

    tar xzf runs/gpu_deps.tar.gz -C /tmp && PYTHONPATH=/tmp/gpu_deps/site:$PWD TWINACT_CACHE=/tmp/gpu_deps/cache \\
        python3 -m stickworld.gpu_run run --out $OUT --minutes 5

Back here, ``python -m stickworld.gpu_run unpack <fetched folder> runs/stickworld2/gpu_v9`` rebuilds the model folder.
The same path runs on the CPU with tiny numbers (``tests/test_stickworld_model.py``)::

    python -m stickworld.gpu_run run --out /tmp/g --device cpu --minutes 1 --steps 2 --batch 2 --workers 2 \\
        --limit 2 --quality-steps 2
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import io
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import torch

from stickworld import pretrain, quality
from twinact.assets import clip_tokenizer_dir

PART_BYTES = 15 * 2**20  # under the device tool's 16 MiB a file
MAX_FILES = 8  # what the device tool brings back from $OUT
DEPS = ("diffusers", "omegaconf", "antlr4", "hydra", "importlib_metadata")  # imported here, absent from the GPU image


def environment() -> dict:
    """Versions, the accelerator and ``nvidia-smi``'s table, printed and returned."""
    info = {"python": sys.version.split()[0], "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count()}
    for name in ("diffusers", "transformers", "numpy"):
        module = importlib.import_module(name)
        info[name] = f"{module.__version__} ({Path(module.__file__).parent})"
    if Path("/dev/shm").is_dir():  # render workers hand batches over through it
        info["dev_shm_bytes"] = shutil.disk_usage("/dev/shm").total
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60).stdout
        print(smi, flush=True)
        info["nvidia_smi"] = smi.splitlines()[:12]
    print(json.dumps({k: v for k, v in info.items() if k != "nvidia_smi"}, indent=1), flush=True)
    return info


def pretrain_argv(args, work: Path, model: Path) -> list[str]:
    """The :mod:`stickworld.pretrain` options of this run; ``args.extra`` comes last, so it overrides any of them."""
    lr = args.lr or (8e-4 if args.from_scratch else 2e-4)  # a continuation moves gently, to keep the known actions
    schedule = args.units_schedule or f"0:1-2,{max(1, args.steps // 3)}:2-5"  # single units first, then binding
    argv = ["--work", str(work), "--out", str(model), "--overwrite", "--captions", "grammar",
            "--unet-steps", str(args.steps), "--unet-batch", str(args.batch), "--unet-lr", str(lr),
            "--warmup", str(min(100, args.steps)), "--seed", str(args.seed), "--max-units-schedule", schedule,
            "--ckpt-every", str(args.ckpt_every), "--log-every", str(args.log_every), "--device", args.device,
            "--workers", str(args.workers), "--stop-after", str(args.minutes)]
    if args.from_scratch:
        argv += ["--vae-steps", str(args.vae_steps), "--vae-batch", "64", "--prediction-type", "v_prediction"]
    else:
        argv += ["--init", args.init]
    return argv + args.extra


def train(args, work: Path, model: Path) -> dict:
    """Pretrain within ``args.minutes``; export the EMA of the last checkpoint when the budget ends the run first."""
    argv = pretrain_argv(args, work, model)
    start = json.loads((work / "state.json").read_text()).get("unet", 0) if (work / "state.json").exists() else 0
    cuda = torch.device(args.device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    pretrain.main(argv)
    seconds = time.time() - t0
    done = json.loads((work / "state.json").read_text())["unet"]
    record = {"pretrain_command": "python -m stickworld.pretrain " + shlex.join(argv), "unet_steps_done": done,
              "finished": done >= args.steps, "train_wall_seconds": round(seconds, 1),
              "steps_per_second": round((done - start) / seconds, 3), "batch": args.batch}
    windows = [r["s_per_step"] for r in map(json.loads, (work / "log.jsonl").read_text().splitlines())
               if r["stage"] == "unet" and r["step"] > start]
    if len(windows) > 1:  # the first window holds the workers' start and cuDNN's autotuning
        record["steady_steps_per_second"] = round(1 / statistics.median(windows[1:]), 3)
        record["steady_samples_per_second"] = round(args.batch * record["steady_steps_per_second"], 1)
    if cuda:
        record["peak_gpu_memory_allocated_bytes"] = torch.cuda.max_memory_allocated()
        record["peak_gpu_memory_reserved_bytes"] = torch.cuda.max_memory_reserved()
    if not record["finished"]:
        pretrain.main(argv + ["--snapshot", str(model)])
        record["exported"] = f"snapshot of step {done} (the EMA at the last checkpoint)"
    return record


def measure(args, model: Path, out: Path) -> dict:
    """The gate sets and ``units_single`` on ``args.limit`` prompts each, into ``out/quality.json``."""
    argv = ["--model", str(model), "--limit", str(args.limit), "--steps", str(args.quality_steps), "--device",
            args.device, "--sets", *quality.SETS, *quality.DIAGNOSTICS, "--out", str(out / "quality.json"),
            "--sheet", str(out / "sheet.png")] + (["--judges", args.judges] if args.judges else [])
    t0 = time.time()
    summary = quality.main(argv)
    headline = {k: {m: summary[k][m] for m in ("action_acc", "actor_acc", "images")}
                for k in (*quality.SETS, *quality.DIAGNOSTICS)}
    return {"quality_command": "python -m stickworld.quality " + shlex.join(argv),
            "quality_wall_seconds": round(time.time() - t0, 1), "quality": headline,
            "passed": summary["passed"]}


def pack(folder: Path, out: Path, name: str = "model.tar.gz") -> list[str]:
    """``folder`` as a gzipped tar (top folder ``model``) cut into :data:`PART_BYTES` parts ``<name>.00``, ..."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        tar.add(folder, arcname="model")
    data, parts = buf.getvalue(), []
    for i in range(0, len(data), PART_BYTES):
        parts.append(f"{name}.{i // PART_BYTES:02d}")
        (out / parts[-1]).write_bytes(data[i:i + PART_BYTES])
    return parts


def unpack(fetched: Path, dest: Path, name: str = "model.tar.gz") -> Path:
    """Join the parts :func:`pack` wrote in ``fetched`` and extract the model folder to ``dest``."""
    parts = sorted(fetched.glob(f"{name}.[0-9][0-9]"))
    if not parts:
        raise SystemExit(f"{fetched} holds no {name}.00 ...: give the folder a gpu_run wrote (its --out).")
    if dest.exists():
        raise SystemExit(f"{dest} exists; give a new folder.")
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.exists() else None) as tmp:
        with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts)), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / "model"), str(dest))
    print(dest)
    return dest


def pack_deps(dest: Path) -> Path:
    """The installed files of :data:`DEPS` (sources and metadata, no bytecode) and the CLIP tokenizer, as
    ``gpu_deps/site/`` and ``gpu_deps/cache/clip_tokenizer/`` in a gzipped tar."""
    owners = importlib.metadata.packages_distributions()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for top in DEPS:
            dist = importlib.metadata.distribution(owners[top][0])
            for f in dist.files:
                if (f.parts[0] == top or f.parts[0].endswith(".dist-info")) and "__pycache__" not in f.parts:
                    tar.add(dist.locate_file(f), arcname=f"gpu_deps/site/{f}")
        tar.add(clip_tokenizer_dir(), arcname="gpu_deps/cache/clip_tokenizer")
    print(f"{dest} ({dest.stat().st_size / 2**20:.1f} MiB)")
    return dest


def run(args) -> dict:
    """Environment, training, export, reading, packing; each failure is recorded and what was made still packed."""
    out, scratch = args.out, args.scratch or Path(tempfile.gettempdir()) / "stickworld_gpu_run"
    out.mkdir(parents=True, exist_ok=True)
    work, model = scratch / "work", scratch / "model"
    record = {"command": "python -m stickworld.gpu_run " + shlex.join(args.argv), "started": time.ctime()}
    t0 = time.time()
    record["environment"] = environment()
    failed = None
    for name, step in (("train", lambda: train(args, work, model)), ("quality", lambda: measure(args, model, out))):
        try:
            record |= step()
        except BaseException as e:  # a failed reading must not lose a trained model: record, pack, then re-raise
            failed = e
            record[f"{name}_error"] = traceback.format_exc()
            print(record[f"{name}_error"], file=sys.stderr, flush=True)
            break
    if (work / "log.jsonl").exists():
        shutil.copy(work / "log.jsonl", out / "log.jsonl")
    if (model / "model_index.json").exists():
        record["parts"] = pack(model, out)
    record["wall_seconds"] = round(time.time() - t0, 1)
    (out / "gpu_run.json").write_text(json.dumps(record, indent=1) + "\n")
    files = sorted(p.name for p in out.iterdir())
    if len(files) > MAX_FILES or any((out / f).stat().st_size > 16 * 2**20 for f in files):
        print(f"warning: {out} holds {files}; the device tool brings back at most {MAX_FILES} files of 16 MiB",
              file=sys.stderr)
    print(json.dumps({k: v for k, v in record.items() if k != "environment"}, indent=1), flush=True)
    if failed is not None:
        raise failed
    return record


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run", help="train, export, read, pack (options after -- go to stickworld.pretrain)")
    r.add_argument("--out", type=Path, required=True, help="folder for what comes back ($OUT on the GPU machine)")
    r.add_argument("--minutes", type=float, required=True, help="training budget (--stop-after)")
    r.add_argument("--scratch", type=Path, default=None, help="checkpoints and the model folder (default: a tmp dir)")
    r.add_argument("--device", default="cuda")
    r.add_argument("--steps", type=int, default=3000, help="planned UNet steps (the schedule's length)")
    r.add_argument("--batch", type=int, default=256)
    r.add_argument("--workers", type=int, default=14, help="render processes (16 cores: two left for the trainer)")
    r.add_argument("--lr", type=float, default=None, help="UNet rate (default 2e-4 from --init, 8e-4 from scratch)")
    r.add_argument("--units-schedule", default=None, help="--max-units-schedule (default 1-2 units for a third)")
    r.add_argument("--seed", type=int, default=9)
    r.add_argument("--init", default="stickworld/data/base", help="model to continue (the shipped one)")
    r.add_argument("--from-scratch", action="store_true", help="train the VAE and a new UNet instead of --init")
    r.add_argument("--vae-steps", type=int, default=3000, help="with --from-scratch")
    r.add_argument("--ckpt-every", type=int, default=200, help="also how often the --minutes budget is checked")
    r.add_argument("--log-every", type=int, default=50)
    r.add_argument("--limit", type=int, default=54, help="prompts per quality set")
    r.add_argument("--quality-steps", type=int, default=25, help="DDIM steps of the reading")
    r.add_argument("--judges", default=None, help="judge weights for the reading (default: the shipped ones)")
    d = sub.add_parser("deps", help="pack the packages and assets the GPU image lacks")
    d.add_argument("dest", type=Path)
    u = sub.add_parser("unpack", help="rebuild the model folder from fetched parts")
    u.add_argument("fetched", type=Path)
    u.add_argument("dest", type=Path)
    args = p.parse_args(own)
    if args.verb == "deps":
        return pack_deps(args.dest)
    if args.verb == "unpack":
        return unpack(args.fetched, args.dest)
    args.extra, args.argv = extra, argv
    return run(args)


if __name__ == "__main__":
    main()
