"""Checkpoints written atomically: a process killed while saving leaves the previous file whole.

Lightning's `TorchCheckpointIO` writes straight to the target path, so a SIGKILL during a save of `last.ckpt` tears
the one file a resume reads. This writes to a temporary file in the same folder and renames it over the target
(`os.replace` is atomic on one filesystem); a failed save removes its temporary file.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytorch_lightning.plugins.io import TorchCheckpointIO


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
