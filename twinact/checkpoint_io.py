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

from twinact.errors import TwinActError

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
        finally:
            tmp.unlink(missing_ok=True)


def read_checkpoint(path: Path) -> dict:
    """A twinact checkpoint through the safe loader (tensors and plain containers only: no pickle of objects)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same advice
        raise TwinActError(f"ckpt_path={path} is not a readable twinact checkpoint ({type(err).__name__}).") from None


def newest_first(folder: Path) -> list[Path]:
    """`last.ckpt`, then the periodic `stepNNNNNN.ckpt` files from the latest step back."""
    steps = sorted((p for p in folder.glob("step*.ckpt") if _STEP.search(p.name)),
                   key=lambda p: int(_STEP.search(p.name).group(1)), reverse=True)
    return [p for p in [folder / "last.ckpt", *steps] if p.is_file()]


def newest_readable(folder: Path) -> tuple[Path, dict] | None:
    """The newest checkpoint in `folder` that reads, and its content; says which newer ones were passed over."""
    torn = []
    for path in newest_first(folder):
        try:
            ckpt = read_checkpoint(path)
        except TwinActError:
            torn.append(path.name)
            continue
        if torn:
            log.warning("Unreadable checkpoint(s) %s in %s; resuming from %s, the newest readable one.",
                        ", ".join(torn), folder, path.name)
        return path, ckpt
    if torn:
        raise TwinActError(f"No checkpoint in {folder} is readable ({', '.join(torn)}). Move the folder away and "
                           "train anew.")
    return None


def remove_temporaries(folder: Path) -> None:
    """Delete the temporary files of saves a killed process never finished (they are never read)."""
    for tmp in folder.glob(".*.ckpt.tmp-*"):
        tmp.unlink(missing_ok=True)
