"""The fit loop of one training run, from the objects `twinact.train.training` builds: fit with Lightning
(callbacks, atomic checkpoints), then export, render and evaluate."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from twinact.config.schema import ActionConfig, CallbacksConfig, DataConfig, ModelConfig
from twinact.errors import NonFiniteError, TwinActError, WriteError
from twinact.eval.evaluation import evaluate
from twinact.method.assembly import Assembled, Recipe, build_module
from twinact.method.data import ActionDataModule, check_resolution, load_exemplars
from twinact.method.module import TwinActModule, check_fingerprint
from twinact.model.models import load_model, resolve_pretrained
from twinact.release.export import export_action
from twinact.release.export_check import check_path_limits
from twinact.release.sampling import make_grid, make_pipeline, render
from twinact.runs.commands import resume_command, sample_command
from twinact.runs.console import ProgressLines
from twinact.runs.files import RunFiles
from twinact.runs.rundir import (
    attach_log_file,
    check_run_dir,
    check_same_settings,
    is_finished,
    record_run,
)
from twinact.runs.runlock import locked_new_run_dir, locked_run_dir
from twinact.runs.stopping import stopped, write_failed
from twinact.train.callbacks import CheckpointOnSignal, LogLastStep, SampleGrid, StepTimer
from twinact.train.checkpoint_io import AtomicCheckpointIO, newest_readable, read_checkpoint, remove_temporaries

log = logging.getLogger(__name__)
# Frozen parts are in eval mode on purpose; an epoch is one optimizer step by design (see data.py), so Lightning's
# "fewer batches than the logging interval" does not apply: logging counts steps across epochs.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
# A run dir is only ever entered again to resume it (never reused, one process at a time): its checkpoints are its own.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


@dataclass
class TrainerPlan:
    """The Lightning Trainer as configured, and the settings twinact reads beside it."""

    make: Callable[..., pl.Trainer]  # pl.Trainer with the `trainer` group's settings; the run adds the rest
    precision: str
    accumulate_grad_batches: int
    fast_dev_run: bool
    stop_after_steps: int | None  # end this process early (job time limits); the schedule still spans every step


@dataclass
class Run:
    """One training run, built from the composed config by `twinact.train.training.build_run`."""

    run_dir: Path
    resume: str  # never | auto
    ckpt_path: str | None
    seed: int
    export: bool
    sample_at_end: bool
    eval_suite: DictConfig | None  # the suite the export is scored on at the end; None: no evaluation
    label: str  # the run's name within its group (W&B, meta.json)
    config: dict  # the resolved config, as recorded: config.yaml, the W&B hyperparameters, the export's meta
    model: ModelConfig
    action: ActionConfig
    data: DataConfig
    callbacks: CallbacksConfig
    recipe: Recipe
    trainer: TrainerPlan
    logger: partial | None  # the configured Lightning logger, given its save_dir here; None: no logger


def build_trainer(run: Run, run_dir: Path, total_steps: int) -> pl.Trainer:
    t, c = run.trainer, run.callbacks
    stop = min(total_steps, t.stop_after_steps) if t.stop_after_steps else total_steps
    logger = False
    if run.logger is not None:
        named = {}
        if run.logger.func.__name__ == "WandbLogger":
            # One W&B run per run dir: a stable id (a resumed point continues its own run), never the process's
            # previous run (a multirun's points all live in one process under Hydra's default launcher).
            named = {"name": run.label, "id": wandb_run_id(run_dir), "resume": "allow"}
        logger = run.logger(save_dir=str(run_dir), **named)
        # the whole resolved config, so runs can be grouped and filtered by any swept key
        logger.log_hyperparams(run.config)
    placeholder = " ".join(run.action.placeholder_tokens)
    callbacks = [
        ModelCheckpoint(dirpath=RunFiles(run_dir).checkpoints, filename="step{step:06d}", auto_insert_metric_name=False,
                        every_n_epochs=c.checkpoint_every_n_steps, save_top_k=-1, save_last=True,
                        enable_version_counter=False),  # last.ckpt is replaced, never joined by last-v1.ckpt
        SampleGrid(str(RunFiles(run_dir).samples), [p.format(placeholder) for p in run.action.eval_prompts],
                   every_n_steps=c.samples_every_n_steps, num_images=c.samples_num_images, steps=c.sample_steps,
                   guidance_scale=c.guidance_scale, resolution=run.data.resolution, seed=run.seed),
    ]
    callbacks += [StepTimer(), ProgressLines(stop), CheckpointOnSignal(RunFiles(run_dir).last_checkpoint),
                  LogLastStep(stop)]
    if logger:
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    # What every twinact run needs whatever the `trainer` group says: one optimizer step per epoch (data.py), no
    # validation loop, the step-indexed stream's own sharding, checkpoints written atomically.
    return t.make(max_epochs=stop, max_steps=stop, logger=logger, callbacks=callbacks, num_sanity_val_steps=0,
                  limit_val_batches=0, use_distributed_sampler=False, default_root_dir=str(run_dir),
                  enable_model_summary=False, plugins=[AtomicCheckpointIO()])


def check_ckpt(path: str | None, fingerprint: dict) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise TwinActError(f"ckpt_path={path} does not exist. Point it at <run>/checkpoints/last.ckpt of a run.")
    try:
        ckpt = read_checkpoint(Path(path))
    except TwinActError as err:
        intact = newest_readable(Path(path).parent) if Path(path).parent.name == "checkpoints" else None
        if intact is None or intact[0] == Path(path):
            raise
        raise TwinActError(f"{err} The newest readable one beside it is {intact[0]}: pass ckpt_path={intact[0]}."
                           ) from None
    check_fingerprint(ckpt.get("twinact_fingerprint"), fingerprint)
    return path


@dataclass
class TrainResult:
    run_dir: Path  # config, log, checkpoints, export, samples
    module: TwinActModule | None  # None when a finished sweep point was skipped
    trainer: pl.Trainer | None


def train_run(run: Run) -> TrainResult:
    """Train an action end to end: build, fit, save the final checkpoint, export and render.

    With `resume: auto` (sweeps) a run dir that already holds an export is skipped (`module` and `trainer` are None),
    after finishing its evaluation if `eval_suite` asks for one that was stopped; one with a checkpoint continues from
    it. One process at a time trains in a run dir (`runlock`); a second one is refused.
    """
    check_path_limits(run.run_dir, run.action.name, list(run.action.placeholder_tokens))
    check_run_dir(run.run_dir)
    if run.resume != "auto":
        return _build_and_fit(run)
    point = run.run_dir
    check_same_settings(point, run.config)
    with locked_run_dir(point):  # before the checks below: the holder may be about to finish or fail
        if RunFiles(point).failed.is_file():
            raise TwinActError(f"{point} diverged before ({RunFiles(point).failed.read_text().strip()}) Fix the cause "
                               f"in a new run_dir, or remove {RunFiles(point).failed} to retry it as it is.")
        if is_finished(point):
            if run.eval_suite is not None and not RunFiles(point).metrics.is_file():
                # stopped between export and the end of its evaluation, which renders only the images still missing
                log.info("%s is trained; finishing its evaluation (resume: auto).", point)
                evaluate(point, run.eval_suite, device="cuda" if torch.cuda.is_available() else "cpu")
            else:
                log.info("%s is finished; skipping (resume: auto).", point)
            return TrainResult(point, None, None)
        return _build_and_fit(run)


def _build_and_fit(run: Run) -> TrainResult:
    pl.seed_everything(run.seed, workers=True, verbose=False)  # the seed is in config.yaml
    # Denormal floats (tiny Adam moments, LoRA products) slow CPU kernels ~100x (seen in the test suite); flushing
    # them to zero changes no result that matters. No effect on GPUs.
    torch.set_flush_denormal(True)
    comps = load_model(run.model, run.trainer.precision)
    check_resolution(run.data.resolution, comps.vae_scale_factor)
    exemplars = load_exemplars(run.action.image_dir, run.data.resolution)
    parts = build_module(run.recipe, comps, exemplars)
    if run.resume == "auto":
        return _fit(run, parts, exemplars, run.run_dir, _resume_checkpoint(run, parts.module.fingerprint))
    ckpt_path = check_ckpt(run.ckpt_path, parts.module.fingerprint)  # before any dir is made: a refused run leaves none
    with locked_new_run_dir(run.run_dir) as run_dir:
        return _fit(run, parts, exemplars, run_dir, ckpt_path)


def _fit(run: Run, parts: Assembled, exemplars, run_dir: Path, ckpt_path: str | None) -> TrainResult:
    module = parts.module
    handler = attach_log_file(run_dir)
    for note in exemplars.notes:  # said on the console while loading, before train.log existed
        handler.handle(log.makeRecord(log.name, logging.WARNING, __file__, 0, note, None, None))
    try:
        _save_run_header(run, run_dir, [ex.path for ex in exemplars], parts.space)
        log.info("Run dir %s: %d exemplars, action space K per slot %s, %d + %d steps", run_dir, len(exemplars),
                 parts.space.slot_components, module.schedule.stage1_steps, module.schedule.stage2_steps)
        datamodule = ActionDataModule(_stream_kwargs(run, module, len(exemplars)), run.data.batch_size,
                                      run.trainer.accumulate_grad_batches, run.data.num_workers)
        trainer = build_trainer(run, run_dir, module.schedule.total_steps)
        started = time.time()
        _log_space_plot(trainer, run_dir)
        # weights_only: check_ckpt already read the file with the safe loader, so Lightning can too (no pickle)
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except NonFiniteError as err:  # marked failed, so no sweep counts it as finished or resumes into it
            RunFiles(run_dir).failed.write_text(f"{err}\n")
            raise
        last = RunFiles(run_dir).last_checkpoint
        if not run.trainer.fast_dev_run:  # the final state, whatever the checkpoint interval
            trainer.save_checkpoint(last, weights_only=False)
        stopped_by = next(c for c in trainer.callbacks if isinstance(c, CheckpointOnSignal)).stopped_by
        if stopped_by is not None:
            raise stopped(handler, stopped_by, trainer.global_step, module.schedule.total_steps, run_dir)
        finished = run.trainer.fast_dev_run or trainer.global_step >= module.schedule.total_steps
        if not finished:  # an export marks a finished run (sweeps skip those), so a stopped one gets none
            log.info("Stopped at step %d of %d; continue with %s", trainer.global_step,
                     module.schedule.total_steps, resume_command(run_dir))
        elif trainer.is_global_zero and run.export:
            _export_and_render(run, run_dir, parts, trainer)
            if run.eval_suite is not None:
                _finish_wandb(trainer)  # the evaluation is a W&B run of its own (job_type eval), not this one
                evaluate(run_dir, run.eval_suite, device=str(module.device))
            _log_summary(run_dir, trainer, time.time() - started, parts.tokens)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # without this, DDP worker processes sometimes abort at interpreter exit
            torch.distributed.destroy_process_group()
    except WriteError as err:
        raise write_failed(handler, err, run_dir) from None
    except OSError as err:  # a write outside the places that name their file (logs, sample grids, the run header)
        raise write_failed(handler, WriteError.of(err.filename or run_dir, err), run_dir) from None
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        _finish_wandb(locals().get("trainer"))
    return TrainResult(run_dir, module, trainer)


def wandb_run_id(run_dir: Path) -> str:
    """A W&B run id that is a function of the run dir alone."""
    return hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


def _finish_wandb(trainer: pl.Trainer | None) -> None:
    logger = getattr(trainer, "logger", None)
    if logger is not None and type(logger).__name__ == "WandbLogger" and logger._experiment is not None:
        logger.experiment.finish()
        logger._experiment = None  # finished: the next call (the run's own end) has nothing left to finish


def _log_summary(run_dir: Path, trainer: pl.Trainer, seconds: float, tokens: list[str]) -> None:
    loss = trainer.callback_metrics.get("train/loss")
    log.info("Done: %d steps in %.1f min, last logged loss %s. Export: %s", trainer.global_step, seconds / 60,
             f"{float(loss):.4f}" if loss is not None else "n/a", RunFiles(run_dir).export)
    log.info("Try it: %s", sample_command(run_dir, f"a polar bear {' '.join(tokens)}"))


def _resume_checkpoint(run: Run, fingerprint: dict) -> str | None:
    """What a `resume: auto` point continues from: `ckpt_path` if given, else the newest readable checkpoint in its
    own dir, if any."""
    run_dir, ckpt_path = run.run_dir, run.ckpt_path
    if not ckpt_path and RunFiles(run_dir).checkpoints.is_dir():
        remove_temporaries(RunFiles(run_dir).checkpoints)
        found = newest_readable(RunFiles(run_dir).checkpoints)
        ckpt_path = str(found[0]) if found else None
    return check_ckpt(ckpt_path, fingerprint)


def _stream_kwargs(run: Run, module: TwinActModule, num_images: int) -> dict:
    return {
        "num_images": num_images, "stage1_steps": module.schedule.stage1_steps,
        "templates": list(run.action.templates), "caption": run.action.caption,
        "placeholder": " ".join(run.action.placeholder_tokens), "flip_p": run.data.flip_p,
        "num_train_timesteps": module.noise_scheduler.config.num_train_timesteps, "seed": run.seed,
    }


@rank_zero_only
def _save_run_header(run: Run, run_dir: Path, paths: list[Path], space) -> None:
    record_run(run_dir, run.config, run.label)
    (run_dir / "exemplars.txt").write_text("\n".join(str(p) for p in paths) + "\n")
    # K per slot, phrase count, explained variance and the design check, beside the plot that shows them
    RunFiles(run_dir).action_space.write_text(json.dumps(space.meta, indent=2))
    plot = run.recipe.cache_root / space.fingerprint() / "action_space.png"
    if plot.is_file():
        shutil.copy(plot, run_dir / "action_space.png")


@rank_zero_only
def _log_space_plot(trainer: pl.Trainer, run_dir: Path) -> None:
    log_image = getattr(trainer.logger, "log_image", None)
    if callable(log_image) and (run_dir / "action_space.png").is_file():
        log_image(key="action_space", images=[str(run_dir / "action_space.png")])


def _export_and_render(run: Run, run_dir: Path, parts: Assembled, trainer: pl.Trainer | None = None) -> None:
    module, tokens, c = parts.module, " ".join(parts.tokens), run.callbacks
    meta = {"action": run.action.name, "base_model": resolve_pretrained(run.model),
            "base_model_revision": run.model.revision, "example_prompt": run.action.eval_prompts[0].format(tokens),
            "steps": c.sample_steps, "guidance_scale": c.guidance_scale, "resolution": run.data.resolution,
            "model": run.config["model"], "action_space": parts.space.meta, "fingerprint": module.fingerprint,
            "config": run.config}
    export_action(RunFiles(run_dir).export, tokens=parts.tokens, vectors=module.vectors,
                  embeddings=module.placeholder_embeddings(), unet=module.unet, lora_config=parts.lora_config,
                  meta=meta)
    if not run.sample_at_end or run.trainer.fast_dev_run:
        return
    prompts = [p.format(tokens) for p in run.action.eval_prompts]
    images = render(make_pipeline(module.comps), prompts, num_images=c.samples_num_images, steps=c.sample_steps,
                    guidance_scale=c.guidance_scale, resolution=run.data.resolution, seed=run.seed)
    make_grid(images, cols=c.samples_num_images).save(RunFiles(run_dir).final_grid)
    log_image = getattr(getattr(trainer, "logger", None), "log_image", None)
    if callable(log_image):
        log_image(key="samples_final", images=[str(RunFiles(run_dir).final_grid)], caption=[" | ".join(prompts)])
    log.info("Wrote %s and %s", RunFiles(run_dir).export, RunFiles(run_dir).final_grid)
