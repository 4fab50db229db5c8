"""Where things live: files shipped inside installed packages (`pkg://`) and twinact's caches."""

from __future__ import annotations

import importlib.util
import os
from importlib import resources
from pathlib import Path

PACKAGE_PREFIX = "pkg://"


def package_path(path: str) -> Path:
    """`pkg://<package>/<rest>` -> `<rest>` under the installed package's `data/` folder; anything else as a local path.

    The package is found by import (`pkg://stickworld/base` is the base model shipped in `stickworld/data/base`), so a
    user's own world ships its data the same way without twinact knowing about it.
    """
    if not path.startswith(PACKAGE_PREFIX):
        return Path(path).expanduser()
    package, _, rest = path[len(PACKAGE_PREFIX):].partition("/")
    # find_spec locates a top-level package without running it: the --help pages list shipped folders, and
    # running `stickworld/__init__.py` for that would cost more than the rest of the page
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return Path(str(resources.files(package).joinpath("data", rest)))  # resources' own error for a non-package
    return Path(spec.submodule_search_locations[0]) / "data" / rest


def cache_dir() -> Path:
    """Root of twinact's caches (assets, action spaces). `TWINACT_CACHE` overrides `~/.cache/twinact`."""
    return Path(os.environ.get("TWINACT_CACHE", Path.home() / ".cache" / "twinact")).expanduser()


def action_space_cache(configured: str | None) -> Path:
    """Where built action spaces are cached: `<cache_dir>/action_spaces` (the config's `cache_dir` or the default)."""
    return (Path(configured).expanduser() if configured else cache_dir()) / "action_spaces"
