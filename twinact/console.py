"""What a run prints: known-harmless library noise filtered where it is emitted, progress lines that read well in a
file or a SLURM log, and a short summary at the end.

Only messages known to be harmless here are dropped (each listed below with where it comes from); every other
warning and log record passes.
"""

from __future__ import annotations

import logging
import time
import warnings

import pytorch_lightning as pl
from transformers.utils import logging as hf_logging

log = logging.getLogger("twinact")

# (logger that creates the record, message start): records from libraries that say nothing about this run. The
# filter sits on that logger, so it holds whichever handler prints the record: the library's own, or the root's
# (transformers propagates to it when the CI variable is set).
NOISE = (
    ("pytorch_lightning.utilities.rank_zero", "💡 Tip: For seamless cloud logging"),  # an advertisement
    ("pytorch_lightning.utilities.rank_zero", "GPU available: False"),  # a CPU run knows it has no GPU
    ("pytorch_lightning.utilities.rank_zero", "TPU available: False"),
    # twinact never uses the image processors
    ("transformers.utils.import_utils", "`CLIPImageProcessor` requires torchvision"),
    ("transformers.utils.import_utils", "`SiglipImageProcessor` requires torchvision"),
    # load_textual_inversion grows the embedding table, then writes the export's own rows into the new slots
    ("transformers.modeling_utils", "The new embeddings will be initialized from a multivariate normal"),
    # twinact's LoRA is UNet-only: loading it finds (rightly) no text-encoder keys
    ("diffusers.loaders.lora_base", "No LoRA keys associated to CLIPTextModel"),
    ("diffusers.loaders.peft", "No LoRA keys associated to CLIPTextModel"),
)


class _DropStarts(logging.Filter):
    def __init__(self, starts: tuple[str, ...]):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def quiet_known_noise() -> None:
    """Install the filters (idempotent)."""
    by_logger: dict[str, tuple[str, ...]] = {}
    for name, start in NOISE:
        by_logger[name] = by_logger.get(name, ()) + (start,)
    for name, starts in by_logger.items():
        target = logging.getLogger(name)
        if not any(isinstance(f, _DropStarts) for f in target.filters):
            target.addFilter(_DropStarts(starts))
    hf_logging.disable_progress_bar()  # "Loading weights" bars, one line per model part in a log file
    # torch's pytree deprecation, raised inside Lightning's own code
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


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
