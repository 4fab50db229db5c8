"""The composed config: built from `conf/` exactly as the entry points build it, and read as flat keys."""

from __future__ import annotations

from hydra import compose, initialize_config_module


def compose_config(overrides: list[str] | None = None, config_name: str = "train"):
    """The config `python train.py <overrides>` runs with (Hydra's compose API; `conf/` found as a package, so this
    works from any working directory)."""
    with initialize_config_module(config_module="conf", version_base="1.3"):
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
