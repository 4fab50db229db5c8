"""`--help` answers at once: entry points import the deep-learning libraries only once a command runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers", "pytorch_lightning", "transformers", "matplotlib")


def imported(script: str, *args: str) -> set[str]:
    """Top-level names of every module `python <script> <args>` imports (Python's own -X importtime log)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-X", "importtime", script, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in lines}


@pytest.mark.parametrize("script", ["train.py", "sample.py", "evaluate.py", "compare.py", "build_space.py"])
def test_help_imports_no_deep_learning_library(script):
    assert sorted(imported(script, "--help") & set(HEAVY)) == []


def test_the_check_sees_a_heavy_import():
    """The same log shows torch when a command does import it, so an empty answer above means something."""
    assert "torch" in imported("-c", "import twinact.model.base")
