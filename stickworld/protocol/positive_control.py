"""The benchmark's positive control: a known action learned from exemplars, its own phrase removed from the space.

The base model renders these actions when named, so a method that learns from exemplars at all should recover them;
removing the action's phrase from the action space means the space cannot hand the answer over as one of its
directions. A row that fails here fails for a reason of its own, not because the action is beyond the base model.
Exemplars are drawn like the held-out ones (five drawings by the superhero, a function of the action's position
in :data:`CONTROL_ACTIONS`) into the benchmark's output folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stickworld.protocol.phrases import phrase_list
from stickworld.world.actions import KNOWN_ACTIONS
from stickworld.world.drawing import draw
from stickworld.world.exemplars import PER_ACTION

# Known actions the shipped base model renders by name at >= 0.89 (stickworld/data/base/quality.json,
# known_by_name.per_action_acc): one of the whole body, one of the legs, one of the arms.
CONTROL_ACTIONS = ("crawling", "lunging", "arms_out")
CONTROL_ACTORS = ("superhero",)


def prepare(action: str, out: Path) -> list[str]:
    """Write ``action``'s exemplars and a phrase list without its phrase under ``out``; the overrides that use them
    (with ``action.name={action}``)."""
    if action not in KNOWN_ACTIONS:
        raise ValueError(f"the positive control learns a known action; {action!r} is not one")
    folder = out / "exemplars" / action
    if not (folder / "exemplars.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([8, list(KNOWN_ACTIONS).index(action)])
        for i in range(PER_ACTION):
            draw(CONTROL_ACTORS[i % len(CONTROL_ACTORS)], action, 64, rng)[0].save(folder / f"{action}_{i:02d}.png")
        (folder / "exemplars.json").write_text(json.dumps({"action": action, "actors": list(CONTROL_ACTORS)}) + "\n")
    phrase = KNOWN_ACTIONS[action].phrase
    kept = [(g, p) for g, p in phrase_list() if p != phrase]
    assert len(kept) == len(phrase_list()) - 1, phrase
    phrases = out / f"phrases_without_{action}.tsv"
    phrases.write_text("".join(f"{g}\t{p}\n" for g, p in kept))
    return [f"action.image_dir={folder}", f"action_space.phrases={phrases}"]
