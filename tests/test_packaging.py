"""What `pip install .` ships: the configs inside `twinact`, no top-level `conf` package; they compose from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOP_LEVEL_SKIP = {".git", "tests", "experiments", "runs", "outputs", "multirun", "wandb", "build", ".venv"}


def skip(folder: str, names: list[str]) -> set[str]:
    """Working state left out of the copy: run folders and caches at the top, bytecode and build records anywhere."""
    top = TOP_LEVEL_SKIP if Path(folder) == REPO else set()
    return {n for n in names if n in top or n == "__pycache__" or n.endswith((".egg-info", "_cache"))}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a copy of the working tree (pip builds in the tree it is given)."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, tmp / "src", symlinks=True, ignore=skip)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp / "out"), str(tmp / "src")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return next((tmp / "out").glob("twinact-*.whl"))


def test_the_configs_ship_inside_twinact(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "conf" not in {n.split("/")[0] for n in names}
    shipped = {n.removeprefix("twinact/conf/") for n in names if n.startswith("twinact/conf/")}
    tracked = {str(p.relative_to(REPO / "twinact" / "conf")) for p in (REPO / "twinact" / "conf").rglob("*")
               if p.suffix in {".yaml", ".example", ".py"} and "__pycache__" not in p.parts
               and not (p.parent.name == "local" and p.suffix == ".yaml")}  # a user's own local/*.yaml stays home
    assert tracked and tracked <= shipped, sorted(tracked - shipped)


def test_the_installed_configs_compose_from_any_folder(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = ("import twinact; from twinact.config.compose import compose_config; "
            "print(twinact.__file__, compose_config(['model=tiny']).model.name)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    location, name = done.stdout.split()
    assert location.startswith(str(tmp_path / "site")) and name == "tiny"
