"""Known-harmless library notices, filtered on the logger that emits them, before those libraries are imported.

Only messages known to be harmless here are dropped (each listed below with where it comes from); every other
warning and log record passes. Nothing here imports the libraries themselves: a filter sits on a logger by name, so
installing it costs nothing and holds whenever the library is imported later.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# A progress bar redraws one line in a terminal; in a log file every redraw is written out (diffusers' "Loading
# pipeline components", the sampling steps). tqdm reads TQDM_* variables as its defaults when it is imported, for
# every library's bars, so this comes before the first import that brings tqdm in.
if not sys.stderr.isatty():
    os.environ.setdefault("TQDM_DISABLE", "1")

from huggingface_hub import utils as hub_utils  # noqa: E402 (after the variable above)

# (logger that creates the record, message start): records from libraries that say nothing about this run. The
# filter sits on that logger, so it holds whichever handler prints the record: the library's own, or the root's
# (transformers propagates to it when the CI variable is set).
NOISE = (
    ("pytorch_lightning.utilities.rank_zero", "💡 Tip: For seamless cloud logging"),  # an advertisement
    ("pytorch_lightning.utilities.rank_zero", "GPU available: False"),  # a CPU run knows it has no GPU
    ("pytorch_lightning.utilities.rank_zero", "TPU available: False"),
    # the planned end of every run (max_steps is the run's step count); the progress lines show the last step
    ("pytorch_lightning.utilities.rank_zero", "`Trainer.fit` stopped: `max_steps="),
    # twinact never uses the image processors
    ("transformers.utils.import_utils", "`CLIPImageProcessor` requires torchvision"),
    ("transformers.utils.import_utils", "`SiglipImageProcessor` requires torchvision"),
    # load_textual_inversion grows the embedding table, then writes the export's own rows into the new slots
    ("transformers.modeling_utils", "The new embeddings will be initialized from a multivariate normal"),
    # twinact's LoRA is UNet-only: loading it finds (rightly) no text-encoder keys
    ("diffusers.loaders.lora_base", "No LoRA keys associated to CLIPTextModel"),
    ("diffusers.loaders.peft", "No LoRA keys associated to CLIPTextModel"),
)


class _DropStarts(logging.Filter):
    def __init__(self, starts: tuple[str, ...]):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def quiet_known_noise() -> None:
    """Install the filters (idempotent)."""
    by_logger: dict[str, tuple[str, ...]] = {}
    for name, start in NOISE:
        by_logger[name] = by_logger.get(name, ()) + (start,)
    for name, starts in by_logger.items():
        target = logging.getLogger(name)
        if not any(isinstance(f, _DropStarts) for f in target.filters):
            target.addFilter(_DropStarts(starts))
    # "Loading weights" bars, one line per model part in a log file. transformers copies huggingface_hub's switch when
    # it is imported, so setting that one here keeps transformers itself unimported until a run needs it.
    hub_utils.disable_progress_bars()
    if "transformers.utils.logging" in sys.modules:
        sys.modules["transformers.utils.logging"].disable_progress_bar()
    # torch's pytree deprecation, raised inside Lightning's own code
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
