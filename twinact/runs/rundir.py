"""Run directories: never reuse one that holds results, and record what produced each run."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from omegaconf import OmegaConf

from twinact.config.compose import flatten
from twinact.errors import TwinActError
from twinact.runs.files import RunFiles

log = logging.getLogger(__name__)

RUN_DIR_ENV = "TWINACT_RUN_DIR"  # rank 0 publishes its run dir to the DDP worker processes it launches
STACK = ("torch", "pytorch-lightning", "diffusers", "transformers", "peft", "hydra-core", "omegaconf", "wandb",
         "scikit-learn", "torchmetrics", "safetensors", "twinact")


def check_run_dir(path: Path) -> None:
    """A run dir that is a file, lies below a file or in a read-only folder: one error before anything is written."""
    if path.is_file():
        raise TwinActError(f"run_dir={path} is a file; give a folder, e.g. run_dir={path.parent / 'runs' / path.stem}.")
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir():
        raise TwinActError(f"run_dir={path} lies below the file {existing}; give a folder, e.g. "
                           f"run_dir=runs/{path.name}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TwinActError(f"run_dir={path} cannot be written ({existing} is read-only for this user); give a "
                           f"writable folder, e.g. run_dir=runs/{path.name}.")


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


# Keys a resumed sweep point may change: where things go, how progress is shown and logged, whether to export,
# evaluate or render at the end, and which class builds the trainer. Everything else decides what the point trains
# and how it is scored.
RESUMABLE_KEYS = ("run_dir", "run_name", "run_group", "ckpt_path", "cache_dir", "resume", "eval", "export",
                  "sample_at_end", "callbacks.", "logger.", "trainer._target_", "trainer._partial_",
                  "trainer.accelerator", "trainer.devices",
                  "trainer.num_nodes", "trainer.strategy", "trainer.gradient_checkpointing",
                  "trainer.enable_progress_bar", "trainer.stop_after_steps", "trainer.log_every_n_steps",
                  "action_space.warn_appearance")


def check_same_settings(run_dir: Path, requested_config: dict) -> None:
    """Refuse to resume (or skip as finished) a `resume: auto` point whose recorded config differs from
    `requested_config` (resolved, plain): its checkpoint or results would be mixed silently into a sweep run with
    other settings (a changed default, say)."""
    recorded_path = RunFiles(run_dir).config
    if not recorded_path.is_file():
        return
    recorded = flatten(OmegaConf.to_container(OmegaConf.load(recorded_path), resolve=False), keep_lists=True)
    requested = flatten(requested_config, keep_lists=True)
    changed = sorted(k for k in recorded.keys() | requested.keys()
                     if not k.startswith(RESUMABLE_KEYS) and recorded.get(k) != requested.get(k))
    if changed:
        shown = "; ".join(f"{k}: {recorded.get(k, '(absent)')!r} -> {requested.get(k, '(absent)')!r}"
                          for k in changed[:6])
        more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
        raise TwinActError(f"{run_dir} holds a run made with other settings ({shown}{more}); resume: auto would mix "
                           "it into this one. Give another run_dir (benchmarks: another --out), or move that run away.")


def git_sha() -> str:
    repo = Path(__file__).resolve().parent  # git finds the checkout from any folder inside it
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


def record_run(run_dir: Path, config: dict, label: str) -> None:
    """Write the resolved `config` and `meta.json` (git sha, versions, command, machine, the run's `label` within its
    group)."""
    files = RunFiles(run_dir)
    files.config.write_text(OmegaConf.to_yaml(config))
    path = files.meta if not files.meta.exists() else run_dir / f"{files.meta.stem}-resumed-{int(time.time())}.json"
    meta = {"git_sha": git_sha(), "versions": versions(), "command": sys.argv, "python": sys.version.split()[0],
            "platform": platform.platform(), "wandb_name": label}  # evaluation names its run after it
    path.write_text(json.dumps(meta, indent=2))


def attach_log_file(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    return handler


COMMAND_LINE_ENV = "TWINACT_COMMAND_LINE"  # the launch command's overrides, inherited by launcher-started jobs
_SWEEP_FUNCTIONS = ("range(", "choice(", "glob(", "interval(", "shuffle(", "sort(")


def remember_command_line(argv: list[str]) -> None:
    """Called by entry points before Hydra: jobs a launcher starts elsewhere can still tell what was swept."""
    os.environ.setdefault(COMMAND_LINE_ENV, json.dumps(argv))


def _is_sweep(value: str) -> bool:
    if value.startswith(_SWEEP_FUNCTIONS):
        return True
    depth, quote = 0, None
    for ch in value:  # a comma outside brackets and quotes separates sweep values
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "," and depth == 0:
            return True
    return False


def command_line_sweeps() -> list[str]:
    """Keys the launch command sweeps over (`lora.rank=4,8` or `lora.rank=range(2,8)`)."""
    keys = []
    for arg in json.loads(os.environ.get(COMMAND_LINE_ENV, "[]")):
        key, sep, value = arg.partition("=")
        if sep and not arg.startswith("-") and not key.startswith("hydra") and _is_sweep(value):
            keys.append(key.lstrip("+~"))
    return keys


def _hydra_run():
    """(this job's task overrides, whether it is a multirun) under a Hydra app; ([], False) otherwise."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        return list(hydra_cfg.overrides.task), hydra_cfg.mode == RunMode.MULTIRUN
    except ValueError:  # not under a Hydra app (tests, notebooks)
        return [], False


def task_overrides() -> list[str]:
    """This job's config overrides: Hydra's (in a multirun, this point's values), else the remembered command
    line's (`remember_command_line`), else none."""
    task, _ = _hydra_run()
    if task:
        return task
    argv = json.loads(os.environ.get(COMMAND_LINE_ENV, "[]"))
    return [a for a in argv if not a.startswith("-") and "=" in a and not a.lstrip("+~").startswith("hydra")]


def sweep_label(run_name: str) -> str:
    """The run's name within its group: the swept keys with this job's values, e.g. `lora.rank-4_seed-1`, else
    `run_name`.

    Only letters, digits, `.`, `-` and `_` survive, so the dir can be passed back as `run=runs/<group>/<label>`
    unquoted (Hydra reads `=` and `,` in a value as syntax).
    """
    task, _ = _hydra_run()
    values = dict(o.lstrip("+~").split("=", 1) for o in task if "=" in o)
    label = "_".join(f"{k}-{values[k]}" for k in command_line_sweeps() if k in values)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label or run_name).strip("_")


def is_multirun() -> bool:
    return _hydra_run()[1]


def requested_run_dir(run_dir: str | None, run_group: str | None, run_name: str) -> Path:
    """`run_dir`; else in a multirun or with `run_group` the stable `runs/<run_group or run_name>/<swept values>`;
    else a new `runs/<run_name>/<time>`."""
    if run_dir:
        return Path(run_dir)
    if is_multirun() or run_group:
        return Path("runs") / (run_group or run_name) / sweep_label(run_name)
    return Path("runs") / run_name / time.strftime("%Y-%m-%d_%H-%M-%S")


def resume_mode(resume: str | None) -> str:
    """`resume` (never | auto, checked with the config), with null meaning auto in a multirun (a relaunched sweep
    resumes) and never otherwise."""
    if resume is None:
        return "auto" if is_multirun() else "never"
    return resume


def is_finished(run_dir: Path) -> bool:
    return RunFiles(run_dir).export_info.is_file()


def newest_finished_run(root: Path = Path("runs")) -> Path | None:
    """The most recently exported run under `root` (`runs/<name>/<time>` or `runs/<group>/<point>`), if any."""
    exports = sorted(root.glob("*/*/export/twinact.json"), key=lambda p: p.stat().st_mtime)
    return exports[-1].parent.parent if exports else None
