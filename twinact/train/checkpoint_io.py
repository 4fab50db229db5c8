"""Checkpoints written atomically, and read back safely, newest readable first.

Lightning's `TorchCheckpointIO` writes straight to the target path, so a SIGKILL during a save of `last.ckpt` tears
the one file a resume reads. This writes to a temporary file in the same folder and renames it over the target
(`os.replace` is atomic on one filesystem); a failed save removes its temporary file. A file torn some other way (a
full disk, a copy cut short) is passed over for the newest intact `stepNNNNNN.ckpt` beside it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from twinact.errors import TwinActError, WriteError
from twinact.runs.files import LAST_CHECKPOINT

log = logging.getLogger(__name__)
_STEP = re.compile(r"step(\d+)\.ckpt$")


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose saves are write-then-rename."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, target)
        except OSError as err:  # a full disk, a quota: the previous checkpoint under this name is still whole
            raise WriteError.of(target, err) from None
        finally:
            tmp.unlink(missing_ok=True)


def read_checkpoint(path: Path) -> dict:
    """A twinact checkpoint through the safe loader (tensors and plain containers only: no pickle of objects)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same advice
        raise TwinActError(f"ckpt_path={path} is not a readable twinact checkpoint ({type(err).__name__}).") from None


def periodic(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the periodic `stepNNNNNN.ckpt` files, from the latest step back."""
    found = [(int(m.group(1)), p) for p in folder.glob("step*.ckpt") if (m := _STEP.search(p.name))]
    return sorted(found, reverse=True)


def newest_readable(folder: Path) -> tuple[Path, dict] | None:
    """The readable checkpoint in `folder` with the latest step, and its content; says which were passed over.

    `last.ckpt` is usually the latest, but not always: a save of it that failed (a full disk) leaves the previous
    one, older than the periodic checkpoint written just before. Its step is known only by reading it.
    """
    torn: list[str] = []
    last = _read(folder / LAST_CHECKPOINT, torn) if (folder / LAST_CHECKPOINT).is_file() else None
    last_step = last[1]["global_step"] if last else -1
    found = next((f for step, path in periodic(folder) if step > last_step and (f := _read(path, torn))), None)
    if found and last:
        log.warning("%s (step %d) is older than %s; resuming from the latest step.", last[0].name, last_step,
                    found[0].name)
    found = found or last
    if torn and found:
        log.warning("Unreadable checkpoint(s) %s in %s; resuming from %s, the newest readable one.",
                    ", ".join(torn), folder, found[0].name)
    if torn and not found:
        raise TwinActError(f"No checkpoint in {folder} is readable ({', '.join(torn)}). Move the folder away and "
                           "train anew.")
    return found


def _read(path: Path, torn: list[str]) -> tuple[Path, dict] | None:
    try:
        return path, read_checkpoint(path)
    except TwinActError:
        torn.append(path.name)
        return None


def remove_temporaries(folder: Path) -> None:
    """Delete the temporary files of saves a killed process never finished (they are never read)."""
    for tmp in folder.glob(".*.ckpt.tmp-*"):
        tmp.unlink(missing_ok=True)
