"""Shared fixtures: offline environment, composed configs on the tiny model, a tiny-model factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports huggingface_hub or wandb: no network, no account.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"


def compose(overrides: list[str] | None = None, config_name: str = "train"):
    """The config `python train.py <overrides>` would run with (Hydra's compose API, no run dir)."""
    from twinact.config.compose import compose_config

    return compose_config(overrides, config_name)


def model_of(cfg):
    """The frozen model a composed config names, loaded as training loads it."""
    from twinact.config.schema import typed
    from twinact.model.models import load_model

    return load_model(typed("model", cfg.model))


def space_of(cfg, comps, slots: int = 3):
    """`build_space` with a composed training config's settings, as training builds them."""
    from twinact.method.assembly import build_space
    from twinact.train.training import build_recipe

    recipe = build_recipe(cfg)
    return build_space(recipe.action_space, comps, slots, recipe.cache_root, recipe.seed)


def module_of(cfg, comps):
    """The TwinActModule a composed training config builds around `comps`, on the config's exemplars."""
    from twinact.method.assembly import build_module
    from twinact.method.data import load_exemplars
    from twinact.train.training import build_recipe

    return build_module(build_recipe(cfg), comps, load_exemplars(cfg.action.image_dir, cfg.data.resolution)).module


def fast_overrides(tmp_path: Path, stage1: int = 2, stage2: int = 2) -> list[str]:
    """A few real steps on the tiny model with nothing slow switched on; everything written under tmp_path."""
    return [
        "model=tiny", f"run_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}", "logger=none",
        f"method.stage1.steps={stage1}", f"method.stage2.steps={stage2}", "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu", "callbacks.samples_every_n_steps=0", "sample_at_end=false",
        "callbacks.checkpoint_every_n_steps=1", "data.batch_size=2", "lora.rank=4", "trainer.log_every_n_steps=1",
    ]


@pytest.fixture
def tiny_cfg(tmp_path):
    """Factory: `tiny_cfg(*extra_overrides, stage1=2, stage2=2)` -> composed DictConfig."""

    def make(*extra: str, stage1: int = 2, stage2: int = 2):
        return compose(fast_overrides(tmp_path, stage1, stage2) + list(extra))

    return make


@pytest.fixture(scope="session")
def tiny_base_model():
    """Factory for fresh tiny-model components (built in code; ~1 s each)."""
    from twinact.model.models import load_base_model

    return lambda: load_base_model(None)


def one_thread():
    """Generator for a module fixture: run the module's tests on one CPU thread (small models are faster so, and
    timings do not depend on what ran before)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# The test tiers (README.md; tests/test_tiers.py checks them): each module's tier, or one test's, which replaces its
# module's. `make test` runs what no tier names (e2e, faults, stickworld, slow): the unit tests and the few end-to-end
# runs marked smoke; `make test-rest` runs the rest, `make test-all` everything.
TIERS = {
    # e2e: trainings, exports, sampling and evaluation of runs, the command line in subprocesses.
    "test_training.py": "e2e",
    "test_training.py::test_fast_dev_run_trains_and_exports": "smoke",
    "test_methods.py": "e2e",
    "test_export.py": "e2e",
    "test_export.py::test_sample_run_writes_images_and_grid": "smoke",
    "test_export_formats.py": "e2e",
    "test_sdxl.py::test_tiny_xl_trains_both_stages_and_exports_to_plain_sdxl": "e2e",
    "test_sdxl.py::test_sdxl_pretrained_path_and_sampling": "e2e",
    "test_space_ops.py": "e2e",
    "test_sweeps.py": "e2e",
    "test_console.py": "e2e",
    "test_ddp.py": "e2e",
    "test_printed_commands.py": "e2e",
    "test_sample_safety.py": "e2e",
    "test_speed.py": "e2e",  # the benchmark harness on the tiny model: 151 s of the fast tier's ~300 s
    "test_help.py": "e2e",  # each entry point's --help in a subprocess
    "test_packaging.py": "e2e",  # builds a wheel
    "test_command_line.py::test_train_py_prints_one_line_exits_2_and_writes_nothing": "e2e",
    "test_command_line.py::test_help_pages_describe_the_tool_with_examples_and_only_its_own_groups": "e2e",
    "test_command_line.py::test_a_value_hydra_reads_as_syntax_names_the_quoting_that_works": "e2e",
    "test_config.py::test_help_lists_the_groups": "e2e",
    "test_config.py::test_unknown_key_and_unknown_action_are_one_clear_error": "e2e",
    "test_config.py::test_user_error_prints_one_line_and_exit_code_2": "smoke",
    "test_config.py::test_sample_refuses_a_folder_that_is_not_a_run": "e2e",
    "test_metrics.py::test_evaluate_writes_report_and_caches_images": "e2e",
    "test_metrics.py::test_evaluate_at_end_of_training": "e2e",
    "test_metrics.py::test_evaluation_of_a_wandb_run_is_logged_as_an_eval_job": "e2e",
    "test_metrics.py::test_customized_actor_gets_image_similarity": "e2e",
    "test_bad_input.py::test_user_photos_of_any_size_train": "e2e",
    "test_bad_input.py::test_huge_tiny_and_elongated_images_are_named_in_the_console_and_train_log": "e2e",
    "test_pose.py::test_pose_runs_read_the_original_photo_and_name_every_exemplar_without_a_person": "e2e",
    # faults: killed, interrupted, diverging and refused runs, signals, locks, full disks.
    "test_faults.py": "faults",
    "test_run_safety.py": "faults",
    "test_reliability.py": "faults",
    "test_stickworld_points.py": "faults",  # a sweep stopped by signals; its workers
    # stickworld: StickWorld's networks trained, resumed and gated, the shipped models' quality, its protocols.
    "test_stickworld_model.py": "stickworld",
    "test_stickworld_clip.py": "stickworld",
    "test_stickworld_judges.py": "stickworld",
    "test_stickworld_benchmark.py": "stickworld",
    "test_stickworld_compare_methods.py": "stickworld",
    "test_stickworld_diagnose.py": "stickworld",
    "test_stickworld_lr_grid.py::test_the_grids_chosen_rates_reach_the_benchmarks_runs": "stickworld",
}


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by `-m`
def pytest_collection_modifyitems(items):
    for item in items:
        tier = TIERS.get(f"{item.path.name}::{item.originalname}", TIERS.get(item.path.name))
        if tier:
            item.add_marker(tier)
