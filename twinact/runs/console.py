"""What a run prints: progress lines that read well in a file or a SLURM log, and a short summary at the end."""

from __future__ import annotations

import logging
import sys
import time

import pytorch_lightning as pl

log = logging.getLogger("twinact")


class ProgressLines(pl.Callback):
    """A line at every tenth of the run (and the last step): step/total, loss, s/step and time left. Unlike a
    progress bar it reads the same in a terminal, a redirected file or a SLURM log."""

    def __init__(self, total_steps: int, every_fraction: float = 0.1):
        self.total = total_steps
        self.every = max(1, round(total_steps * every_fraction))
        self.start: float | None = None
        self.start_step = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self.start, self.start_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if (batch_idx + 1) % trainer.accumulate_grad_batches or not (step % self.every == 0 or step == self.total):
            return
        done = step - self.start_step
        rate = (time.perf_counter() - self.start) / max(1, done)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        shown = f"{float(loss):.4f}" if loss is not None else "n/a"
        log.info("step %d/%d  loss %s  %.2f s/step  ETA %s", step, self.total, shown, rate,
                 _duration(rate * (self.total - step)))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class CountProgress:
    """A line at the first item, at every tenth of `total`, at the last, and at least every `every_s` seconds:
    count, time per item and time left (for renders, whose diffusers progress bar counts denoising steps only)."""

    def __init__(self, total: int, what: str = "images", every_s: float = 30.0):
        self.total, self.what, self.every_s = total, what, every_s
        self.tenth = max(1, round(total / 10))
        self.start = self.last = time.perf_counter()
        self.shown = 0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        due = done == self.total or done // self.tenth > self.shown // self.tenth or now - self.last >= self.every_s
        if not due and self.shown:
            return
        rate = (now - self.start) / max(1, done)
        log.info("%s %d/%d  %.2f s each  ETA %s", self.what, done, self.total, rate,
                 _duration(rate * (self.total - done)))
        self.shown, self.last = done, now


class _ProgressOnly(logging.Filter):
    """Lets through this module's lines (training steps, renders) and any warning; tags each with the point."""

    def __init__(self, tag: str):
        super().__init__()
        self.tag = tag

    def filter(self, record: logging.LogRecord) -> bool:
        record.tag = self.tag
        return record.name == log.name or record.levelno >= logging.WARNING


def progress_to_console(tag: str = "") -> None:
    """Print the progress lines and warnings of the runs this process trains on stdout, each after ``tag``; replaces
    an earlier call's handler. For scripts that call ``train()`` themselves (train.py gets Hydra's job logging): every
    other record goes only to the run's train.log."""
    for handler in [h for h in log.handlers if getattr(h, "twinact_console", False)]:
        log.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.twinact_console = True
    handler.addFilter(_ProgressOnly(tag))
    handler.setFormatter(logging.Formatter("%(tag)s%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
