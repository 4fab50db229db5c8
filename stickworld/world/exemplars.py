"""Exemplar sets for StickWorld's held-out actions: five drawings each, by one or two "exemplar actors".

``python -m stickworld.world.exemplars`` writes ``stickworld/data/exemplars/<action>/`` (PNG files and an
``exemplars.json`` naming the actors, which the evaluation's Leakage metric reads). Drawings are a function of the
action's position in the held-out list, so the shipped files can be checked against a fresh run.

Exemplar actors are people (as in the paper's photos); an evaluation renders the learnt action with other actors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stickworld.world.actions import HELDOUT_ACTIONS, Action, add_heldout
from stickworld.world.drawing import draw
from twinact.errors import TwinActError
from twinact.paths import package_path

PER_ACTION = 5
# One or two exemplar actors per action, in HELDOUT_ACTIONS order (cycled).
EXEMPLAR_ACTORS = (("superhero",), ("red_haired_woman", "boy_in_cap"), ("old_man",), ("hiker", "knight"))
DEFAULT_DIR = "pkg://stickworld/exemplars"


def exemplar_actors(action: str, listed: dict[str, Action] | None = None) -> tuple[str, ...]:
    """The exemplar actors of ``action``, by its position in ``listed`` (default: the shipped held-out list)."""
    return EXEMPLAR_ACTORS[list(listed or HELDOUT_ACTIONS).index(action) % len(EXEMPLAR_ACTORS)]


def draw_set(action: str, size: int = 64, listed: dict[str, Action] | None = None) -> list:
    """The ``PER_ACTION`` exemplar images of held-out ``action`` (actors alternate when there are two), a function of
    its position in ``listed`` (default: the shipped held-out list)."""
    index = list(listed or HELDOUT_ACTIONS).index(action)
    rng = np.random.default_rng([7, index])
    actors = exemplar_actors(action, listed)
    return [draw(actors[i % len(actors)], listed[action] if listed else action, size, rng)[0]
            for i in range(PER_ACTION)]


def write(out: Path, actions: list[str], listed: dict[str, Action] | None = None) -> None:
    """Exemplar folders ``out/<action>/`` of ``actions`` (from ``listed``, default the shipped held-out list)."""
    for action in actions:
        folder = out / action
        folder.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(draw_set(action, listed=listed)):
            im.save(folder / f"{action}_{i:02d}.png")
        (folder / "exemplars.json").write_text(
            json.dumps({"action": action, "actors": exemplar_actors(action, listed)}) + "\n")


def exemplar_dir(action: str, drawn: Path | None) -> str:
    """Where ``action``'s exemplars are: the shipped folder, or ``drawn/<action>`` for a user's actions file."""
    return f"{DEFAULT_DIR}/{action}" if drawn is None else str(drawn / action)


def from_actions_file(path: Path, out: Path) -> tuple[dict[str, Action], Path]:
    """Register the held-out actions of a user's ``path`` (:func:`stickworld.world.actions.add_heldout`) and draw
    their exemplars into ``out/exemplars`` (kept when a resumed run already has them); returns (the file's actions, that
    folder), for :func:`exemplar_dir`."""
    try:
        listed = add_heldout(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TwinActError(f"--actions-file {path}: {e} (format: a JSON list of {{name, phrase, split, pose, units, "
                           "description}}, as stickworld/data/heldout_actions.json)") from None
    root = out / "exemplars"
    write(root, [a for a in listed if not (root / a / "exemplars.json").is_file()], listed)
    return listed, root


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
