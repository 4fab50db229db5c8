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
def tiny_components():
    """Factory for fresh tiny-model components (built in code; ~1 s each)."""
    from twinact.model.models import load_components

    return lambda: load_components(None)


def one_thread():
    """Generator for a module fixture: run the module's tests on one CPU thread (small models are faster so, and
    timings do not depend on what ran before)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
