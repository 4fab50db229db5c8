"""The files of a run directory and of an export, each named here once.

Training writes them, and sample.py, evaluate.py, compare.py and resume read them back, so a name spelled in two
modules could drift apart silently; every reader and writer goes through these names instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXPORT_INFO = "twinact.json"  # in an export: what was trained and how to prompt it (sample.py reads it first)
EXPORT_STATE = "twinact_state.safetensors"  # in an export: MLPs, action feature, basis (to re-derive the tokens)
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' own name, so load_lora_weights finds it by folder
LAST_CHECKPOINT = "last.ckpt"  # Lightning's ModelCheckpoint(save_last=True) writes this name
FAILED_MARK = "FAILED"  # in a run dir whose training diverged, holding the error


@dataclass(frozen=True)
class RunFiles:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        """The resolved config the run was started with (resume compares against it)."""
        return self.root / "config.yaml"

    @property
    def meta(self) -> Path:
        """Versions, command and host of the first start (a resume writes `meta-resumed-<time>.json` beside it)."""
        return self.root / "meta.json"

    @property
    def action_space(self) -> Path:
        return self.root / "action_space.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def export_info(self) -> Path:
        return self.export / EXPORT_INFO

    @property
    def samples(self) -> Path:
        """Grids rendered during training, and sample.py's output folders."""
        return self.root / "samples"

    @property
    def final_grid(self) -> Path:
        return self.root / "samples_final.png"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def eval_images(self) -> Path:
        return self.eval / "images"

    @property
    def metrics(self) -> Path:
        return self.eval / "metrics.json"

    @property
    def failed(self) -> Path:
        return self.root / FAILED_MARK
