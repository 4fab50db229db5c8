"""Lightning callbacks: sample grids during training (rank 0 only), step timing, the last step logged, and a
checkpoint on preemption and stop signals."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from twinact.release.sampling import make_grid, make_pipeline, render

log = logging.getLogger(__name__)


class SampleGrid(pl.Callback):
    """Every `every_n_steps` optimizer steps, render the eval prompts with the live model.

    Grids go to `<run>/samples/step_XXXXXX.png` and to the logger when it can show images (W&B).
    """

    def __init__(self, out_dir: str, prompts: list[str], every_n_steps: int = 100, num_images: int = 2,
                 steps: int = 20, guidance_scale: float = 7.5, resolution: int = 512, seed: int = 0):
        self.out_dir, self.prompts, self.every = Path(out_dir), list(prompts), every_n_steps
        self.kw = dict(num_images=num_images, steps=steps, guidance_scale=guidance_scale, resolution=resolution,
                       seed=seed, progress=False)
        self._last = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every > 0 and step % self.every == 0 and step != self._last and step > 0:
            self._render(trainer, pl_module, step)

    @rank_zero_only
    def _render(self, trainer, pl_module, step: int) -> None:
        self._last = step
        if not self.prompts or trainer.fast_dev_run:
            return
        was_training = pl_module.training
        pl_module.eval()
        images = render(make_pipeline(pl_module.comps), self.prompts, **self.kw)
        pl_module.train(was_training)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        grid = make_grid(images, cols=self.kw["num_images"])
        path = self.out_dir / f"step_{step:06d}.png"
        grid.save(path)
        log_image = getattr(trainer.logger, "log_image", None)
        if callable(log_image):
            log_image(key="samples", images=[str(path)], caption=[" | ".join(self.prompts)], step=step)


class StepTimer(pl.Callback):
    """Wall time of every optimizer step (data, Lightning, forward, backward, optimizer: everything in between)
    and the time from process start to the first step; logged as `perf/*`, kept in `step_times`."""

    def __init__(self):
        self.step_times: list[float] = []
        self.startup_s: float | None = None
        self._last: float | None = None

    @staticmethod
    def _now(pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.startup_s is None:
            self.startup_s = time.time() - psutil.Process().create_time()
            self._last = self._now(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return
        now = self._now(pl_module)
        self.step_times.append(now - self._last)
        self._last = now
        if trainer._logger_connector.should_update_logs:
            pl_module.log("perf/step_s", self.step_times[-1], on_step=True, batch_size=1)


class LogLastStep(pl.Callback):
    """Log the last step of the process whatever `trainer.log_every_n_steps` says, so a run shorter than the interval
    still writes its metrics (`metrics.csv`) and every run its final loss.

    Lightning logs a step when `should_stop` is set; it is set on the last micro-batch of the last step, after which
    the process ends anyway (`max_steps`), so nothing else changes.
    """

    def __init__(self, stop_step: int):
        self.stop_step = stop_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step + 1 >= self.stop_step and (batch_idx + 1) % trainer.accumulate_grad_batches == 0:
            trainer.should_stop = True


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # kill / docker stop / systemd / Kubernetes / SLURM's limit; Ctrl-C


class CheckpointOnSignal(pl.Callback):
    """On a preemption or stop signal, write `last.ckpt` at the end of the current optimizer step.

    SLURM through submitit sends SIGUSR2 before a job's time limit (`signal_delay_s`); submitit's own handler then
    requeues the job and exits, and Lightning's SLURM auto-requeue does the same on SIGUSR1, so without this a
    preempted run loses every step since its last periodic checkpoint. After the checkpoint, the handler installed
    before runs (submitit's or Lightning's); with none, training stops there and the run resumes later.

    SIGTERM and SIGINT stop training the same way and set `stopped_by`, for the caller to exit as a shell reports a
    signal (128 + its number). They replace Lightning's SIGTERM handling (it ends the process with exit code 0 and no
    checkpoint, so a scheduler records success) and Python's KeyboardInterrupt on Ctrl-C (exit 1, no checkpoint).
    A second stop signal ends the process at once: checkpoints on disk are whole, since they are written atomically.

    The handler only sets a flag (signal handlers may interrupt a step anywhere); the checkpoint is written between
    steps.
    """

    def __init__(self, path: Path, signals: tuple[int, ...] = (signal.SIGUSR1, signal.SIGUSR2, *STOP_SIGNALS)):
        self.path, self.signals = Path(path), signals
        self.pending: tuple | None = None
        self.stopped_by: int | None = None
        self.previous: dict[int, object] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in self.signals:
            self.previous[sig] = signal.signal(sig, self._note)

    def _note(self, signum, frame) -> None:
        if signum in STOP_SIGNALS and self.pending is not None and self.pending[0] in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.pending = (signum, frame)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # An epoch is one optimizer step (data.py). Its end, where the periodic checkpoints are written too, is the
        # first point where the learning-rate schedulers have stepped as well, so a resume from here is exact.
        if self.pending is None:
            return
        signum, frame = self.pending
        self.pending = None
        trainer.save_checkpoint(self.path, weights_only=False)  # the whole state: a resume continues from it
        if signum in STOP_SIGNALS:  # the caller logs why the run stopped and how to continue it
            self.stopped_by, trainer.should_stop = signum, True
            return
        log.info("Signal %s: wrote %s at step %d.", signal.Signals(signum).name, self.path, trainer.global_step)
        handler = self.previous.get(signum)
        if callable(handler):
            handler(signum, frame)
        else:
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        if self.pending is not None and self.pending[0] in STOP_SIGNALS:  # came after the last step's end
            self.stopped_by = self.pending[0]
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}
