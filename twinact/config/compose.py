"""The composed config: built from `twinact/conf/` exactly as the entry points build it, and read as flat keys."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from twinact.paths import package_path


def compose_config(overrides: list[str] | None = None, config_name: str = "train"):
    """The config `python train.py <overrides>` runs with (Hydra's compose API; `twinact.conf` found as a package,
    so this works from any working directory)."""
    with initialize_config_module(config_module="twinact.conf", version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides or []))


def flatten(tree: dict, prefix: str = "", keep_lists: bool = False) -> dict:
    """Nested config -> {"a.b.c": value}; lists are dropped (they are not swept scalars) unless `keep_lists`."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + ".", keep_lists))
        elif keep_lists or not isinstance(value, list):
            out[name] = value
    return out


def group_options(group: str) -> str:
    """A config group's options, comma-separated (the `schema` every group holds is not one to choose)."""
    folder = Path(importlib.util.find_spec("twinact.conf").submodule_search_locations[0]) / group
    return ", ".join(sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "schema"))


def shipped_folders(path: str) -> str:
    """The subfolders of a shipped `pkg://` folder, comma-separated (e.g. the actions with exemplars)."""
    folder = package_path(path)
    return ", ".join(sorted(p.name for p in folder.iterdir() if p.is_dir())) if folder.is_dir() else "(none)"


def first_set(*values):
    """The first value that is not null (`${twinact_first:${run_group},${run_name}}`)."""
    return next((v for v in values if v is not None), None)


# For the --help pages (conf/*.yaml `hydra.help.template`), which OmegaConf resolves when Hydra prints them, and the
# SLURM job name.
OmegaConf.register_new_resolver("twinact_options", group_options, replace=True)
OmegaConf.register_new_resolver("twinact_folders", shipped_folders, replace=True)
OmegaConf.register_new_resolver("twinact_first", first_set, replace=True)
