"""Exemplar sets for StickWorld's held-out actions: five renders each, by one or two "exemplar actors".

``python -m stickworld.exemplars`` writes ``stickworld/data/exemplars/<action>/`` (PNG files and an
``exemplars.json`` naming the actors, which the evaluation's Leakage metric reads). Renders are a function of the
action's position in the held-out list, so the shipped files can be checked against a fresh run.

Exemplar actors are people (as in the paper's photos); an evaluation renders the learnt action with other actors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stickworld.actions import HELDOUT_ACTIONS
from stickworld.render import render
from twinact.paths import package_path

PER_ACTION = 5
# One or two exemplar actors per action, in HELDOUT_ACTIONS order (cycled).
EXEMPLAR_ACTORS = (("superhero",), ("red_haired_woman", "boy_in_cap"), ("old_man",), ("hiker", "knight"))
DEFAULT_DIR = "pkg://stickworld/exemplars"


def exemplar_actors(action: str) -> tuple[str, ...]:
    return EXEMPLAR_ACTORS[list(HELDOUT_ACTIONS).index(action) % len(EXEMPLAR_ACTORS)]


def render_set(action: str, size: int = 64) -> list:
    """The ``PER_ACTION`` exemplar images of held-out ``action`` (actors alternate when there are two)."""
    index = list(HELDOUT_ACTIONS).index(action)
    rng = np.random.default_rng([7, index])
    actors = exemplar_actors(action)
    return [render(actors[i % len(actors)], action, size, rng)[0] for i in range(PER_ACTION)]


def write(out: Path, actions: list[str]) -> None:
    for action in actions:
        folder = out / action
        folder.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(render_set(action)):
            im.save(folder / f"{action}_{i:02d}.png")
        (folder / "exemplars.json").write_text(json.dumps({"action": action, "actors": exemplar_actors(action)}) + "\n")


def load_meta(image_dir: str) -> dict:
    """``exemplars.json`` of an exemplar folder ({} for a folder of one's own images)."""
    path = package_path(image_dir) / "exemplars.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=package_path(DEFAULT_DIR))
    p.add_argument("--actions", nargs="*", default=list(HELDOUT_ACTIONS))
    args = p.parse_args(argv)
    write(args.out, args.actions)
    print(args.out)


if __name__ == "__main__":
    main()
