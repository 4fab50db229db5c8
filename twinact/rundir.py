"""Run directories: never reuse one that holds results, and record what produced each run."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

RUN_DIR_ENV = "TWINACT_RUN_DIR"  # rank 0 publishes its run dir to the DDP worker processes it launches
STACK = ("torch", "pytorch-lightning", "diffusers", "transformers", "peft", "hydra-core", "omegaconf", "wandb",
         "scikit-learn", "torchmetrics", "safetensors", "twinact")


def allocate_run_dir(requested: str | Path) -> Path:
    """`requested` if it is new or empty, else the first free `requested-N` (earlier results are never touched)."""
    if os.environ.get("LOCAL_RANK", "0") != "0" and os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    path = Path(requested)
    candidate, n = path, 0
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    if candidate != path:
        log.warning("Run dir %s already holds a run; writing to %s instead.", path, candidate)
    candidate.mkdir(parents=True, exist_ok=True)
    os.environ[RUN_DIR_ENV] = str(candidate.resolve())
    return candidate


def git_sha() -> str:
    repo = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    found = {}
    for name in STACK:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def record_run(run_dir: Path, cfg: DictConfig) -> None:
    """Write the resolved config and `meta.json` (git sha, versions, command, machine)."""
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    meta = {"git_sha": git_sha(), "versions": versions(), "command": sys.argv, "python": sys.version.split()[0],
            "platform": platform.platform()}
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2))


def attach_log_file(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    return handler
