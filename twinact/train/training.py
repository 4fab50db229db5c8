"""`train(cfg)`: build every object a run uses from the composed config, then fit. The testable core of train.py.

This is the one module below the entry points that reads the composed config: each group becomes its schema's
dataclass (`twinact.config.schema.typed`) or, where the group names an implementation by `_target_` (trainer, logger,
action encoder), a Hydra-instantiated partial that the fit loop finishes with what only it knows (the run dir,
callbacks). Everything below takes those objects.
"""

from __future__ import annotations

import json
import logging
import shutil

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from twinact.config.schema import typed
from twinact.config.validate import check_choices, check_training_config
from twinact.method.assembly import Recipe, build_space
from twinact.model.models import load_model
from twinact.paths import action_space_cache
from twinact.runs.rundir import allocate_run_dir, requested_run_dir, resume_mode, sweep_label
from twinact.space import action_space as spaces
from twinact.train.fit import Run, TrainerPlan, TrainResult, train_run

log = logging.getLogger(__name__)

# `trainer` keys twinact reads itself; every other key is a `pl.Trainer` argument.
TWINACT_TRAINER_KEYS = ("gradient_checkpointing", "stop_after_steps")


def train(cfg: DictConfig) -> TrainResult:
    """Train an action end to end: check the config, build the run's objects, fit, export, render (see
    `twinact.train.fit.train_run`)."""
    with open_dict(cfg):  # settled once: the run dir's time stamp and the multirun default must not change later
        cfg.resume = resume_mode(cfg.resume)
        cfg.run_dir = str(requested_run_dir(cfg.run_dir, cfg.run_group, cfg.run_name))
    check_training_config(cfg)
    return train_run(build_run(cfg))


def build_run(cfg: DictConfig) -> Run:
    """The typed objects of a checked, settled training config."""
    recipe = build_recipe(cfg)
    return Run(
        run_dir=requested_run_dir(cfg.run_dir, cfg.run_group, cfg.run_name), resume=cfg.resume,
        ckpt_path=cfg.ckpt_path, seed=cfg.seed, export=cfg.export, sample_at_end=cfg.sample_at_end,
        eval_suite=cfg.eval_suite if cfg.eval else None, label=sweep_label(cfg.run_name),
        config=OmegaConf.to_container(cfg, resolve=True), model=typed("model", cfg.model), action=recipe.action,
        data=typed("data", cfg.data), callbacks=typed("callbacks", cfg.callbacks), recipe=recipe,
        trainer=trainer_plan(cfg.trainer), logger=logger_factory(cfg.logger),
    )


def build_recipe(cfg: DictConfig) -> Recipe:
    """What `build_module` assembles: the typed method groups and the action encoder to make."""
    encoder = cfg.action_encoder
    return Recipe(
        action=typed("action", cfg.action), action_space=typed("action_space", cfg.action_space),
        method=typed("method", cfg.method), lora=typed("lora", cfg.lora), loss=typed("loss", cfg.loss),
        latents=cfg.model.latents, resolution=cfg.data.resolution, seed=cfg.seed,
        cache_root=action_space_cache(cfg.cache_dir),
        # made when the module is built, after the model and exemplars load (an encoder may load a model itself)
        encoder=instantiate(encoder.encoder, _partial_=True) if encoder.encoder is not None else None,
        encoder_name=encoder.name, feature_dim=encoder.dim, gradient_checkpointing=cfg.trainer.gradient_checkpointing,
    )


def trainer_plan(t: DictConfig) -> TrainerPlan:
    """`pl.Trainer` with the group's settings (`_target_`, `_partial_: true`), and what twinact reads beside it."""
    lightning = OmegaConf.masked_copy(t, [k for k in t if k not in TWINACT_TRAINER_KEYS])
    return TrainerPlan(make=instantiate(lightning), precision=str(t.precision),
                       accumulate_grad_batches=t.accumulate_grad_batches, fast_dev_run=t.fast_dev_run,
                       stop_after_steps=t.stop_after_steps)


def logger_factory(node: DictConfig | None):
    """The configured Lightning logger, to be given its save_dir; None for `logger=none` (an empty node)."""
    if not node or "_target_" not in node:
        return None
    return instantiate(node, _partial_=True)


def build_space_command(cfg: DictConfig) -> spaces.ActionSpace:
    """`python build_space.py model=... action_space=...`: build (or find) the space and copy it to `cfg.out`."""
    check_choices(cfg)
    cache_root = action_space_cache(cfg.cache_dir)
    space = build_space(typed("action_space", cfg.action_space), load_model(typed("model", cfg.model)), cfg.slots,
                        cache_root, cfg.seed)
    entry = cache_root / space.fingerprint()
    if cfg.out:
        out = allocate_run_dir(cfg.out)
        shutil.copytree(entry, out, dirs_exist_ok=True)
        (out / spaces.ENTRY_META).write_text(json.dumps(space.meta, indent=2))  # with this call's design check
        entry = out
    log.info("Action space K per slot %s (explained variance per slot %s) in %s", space.slot_components,
             ", ".join(f"{v:.3f}" for v in space.meta["explained_variance"]), entry)
    return space
