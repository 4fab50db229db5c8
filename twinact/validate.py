"""Range and shape checks on a composed training config, run before anything is loaded or written.

The schemas (`twinact/schema.py`) already refuse wrong types when the config is composed; these are the checks a
type cannot express. Each names the key and a value that works when typed as shown.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from twinact.errors import TwinActError
from twinact.paths import package_path
from twinact.placeholder import token_filename
from twinact.webui import webui_name

# (key, test, what it must be, an example that works)
RANGES = (
    ("method.stage1.steps", lambda v: v >= 0, "a step count >= 0", "200"),
    ("method.stage2.steps", lambda v: v >= 0, "a step count >= 0", "600"),
    ("method.stage1.lr", lambda v: v > 0, "a learning rate > 0", "2e-4"),
    ("method.stage2.lora_lr", lambda v: v > 0, "a learning rate > 0", "2e-4"),
    ("method.similarity_weight", lambda v: v >= 0, "a weight >= 0 (0: off)", "0.15"),
    ("method.warmup_steps", lambda v: v >= 0, "a step count >= 0", "0"),
    ("data.batch_size", lambda v: v >= 1, "a batch size >= 1", "4"),
    ("data.flip_p", lambda v: 0 <= v <= 1, "a probability in [0, 1]", "0.0"),
    ("trainer.accumulate_grad_batches", lambda v: v >= 1, "a count >= 1", "1"),
    ("lora.dropout", lambda v: 0 <= v < 1, "a probability in [0, 1)", "0.0"),
    ("loss.similarity.start", lambda v: 0 <= v <= 1, "a fraction of the stage in [0, 1]", "0.4"),
)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_training_config(cfg: DictConfig) -> None:
    """Raise one `TwinActError` for the first value no run could use."""
    for key, ok, must, example in RANGES:
        value = OmegaConf.select(cfg, key)
        if value is not None and not ok(value):
            raise TwinActError(f"{key}={value} must be {must}, e.g. {key}={example}.")
    a = cfg.action
    if not a.placeholder_tokens:
        raise TwinActError("action.placeholder_tokens is empty; give at least one, e.g. "
                           "action.placeholder_tokens='[<a1>,<a2>,<a3>]'.")
    for key, texts in (("action.caption", [a.caption]), ("action.templates", list(a.templates))):
        missing = [t for t in texts if "{}" not in t]
        if missing:
            raise TwinActError(f"{key} must contain {{}} where the placeholder tokens go (the tokens would never be "
                               f"trained); {missing[0]!r} has none, e.g. \"a photo of {{}}\".")
    if not SAFE_NAME.match(str(a.name)):
        raise TwinActError(f"action.name={a.name!r} must be a plain name (letters, digits, '_', '-', '.'), since it "
                           "names the run directory, e.g. action.name=my_action.")
    folder = package_path(str(a.image_dir))
    if folder.exists() and not folder.is_dir():
        raise TwinActError(f"action.image_dir={a.image_dir} is a file; give the folder that holds the exemplar "
                           f"images, e.g. action.image_dir={Path(folder).parent}.")



def check_sampling(num_images: int, steps: int | None, guidance_scale: float | None) -> None:
    """`sample.py`'s numbers, before any model is loaded."""
    if num_images < 1:
        raise TwinActError(f"num_images={num_images} must be at least 1 (images per prompt), e.g. num_images=4.")
    if steps is not None and steps < 1:
        raise TwinActError(f"steps={steps} must be at least 1 (DDIM steps), e.g. steps=25, or steps=null for the "
                           "export's.")
    if guidance_scale is not None and guidance_scale < 0:
        raise TwinActError(f"guidance_scale={guidance_scale} must be >= 0, e.g. guidance_scale=7.5, or "
                           "guidance_scale=null for the export's.")


def check_eval_suite(suite: DictConfig) -> None:
    """An evaluation suite's lists and numbers, before any model is loaded."""
    for key, example in (("actors", "'eval_suite.actors=[{name: robot}]'"), ("templates", None),
                         ("seeds", "'eval_suite.seeds=[0,1]'")):
        if not suite.get(key):
            raise TwinActError(f"eval_suite.{key} is empty; give at least one"
                               + (f", e.g. {example}." if example else " (see conf/eval_suite/demo.yaml)."))
    bad = [s for s in suite.seeds if not isinstance(s, int) or s < 0]
    if bad:
        raise TwinActError(f"eval_suite.seeds holds {bad[0]!r}; seeds are integers >= 0, e.g. "
                           "'eval_suite.seeds=[0,1]'.")
    for key, example in (("steps", 20), ("batch_size", 4)):
        if suite.get(key) is not None and suite[key] < 1:
            raise TwinActError(f"eval_suite.{key}={suite[key]} must be at least 1, e.g. eval_suite.{key}={example}.")
    missing = [t for t in suite.templates if "{action}" not in t]
    if missing:
        raise TwinActError(f"eval_suite.templates must contain {{action}} where the placeholder tokens go; "
                           f"{missing[0]!r} has none.")


SUFFIX_ROOM = len("-999")  # what `allocate_run_dir` may append to a used run dir's last folder


def check_path_limits(run_dir: Path, action_name: str, tokens: list[str]) -> None:
    """Every file a run writes gets a name and a path the filesystem takes: checked before training, since a name
    refused at the export would fail a finished run (and every resume of it).

    The longest file names are the export's web-UI files (`<action>.safetensors`) and token files
    (`<token>.safetensors`); the longest path is a web-UI file inside the export while it is built
    (`<run>/.export.partial/webui/embeddings/...`).
    """
    run_dir = run_dir.absolute()
    existing = next(p for p in [run_dir, *run_dir.parents] if os.path.exists(p))  # False for a too long name
    name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    webui = f"{webui_name(action_name)}.safetensors"
    if len(webui.encode()) > name_max:
        raise TwinActError(f"action.name is {len(action_name)} characters; it names the export's {webui[:24]}... "
                           f"and file names take at most {name_max} bytes here: keep it to "
                           f"{name_max - len('.safetensors')} or fewer, e.g. action.name={action_name[:40]}.")
    for token in tokens:
        if len(f"{token_filename(token)}.safetensors".encode()) > name_max:
            raise TwinActError(f"The placeholder token {token[:24]}... names a file of more than {name_max} bytes "
                               "(the limit here); use short tokens, e.g. action.placeholder_tokens='[<a1>,<a2>,<a3>]'.")
    # the last folder keeps room for the -N a used run dir gets
    limits = [(part, name_max) for part in run_dir.parts[1:-1]] + [(run_dir.name, name_max - SUFFIX_ROOM)]
    long = [(part, limit) for part, limit in limits if len(part.encode()) > limit]
    longest = run_dir / ".export.partial" / "webui" / "embeddings" / webui
    if long or len(str(longest).encode()) >= path_max:
        short = Path(*(p[:40] for p in run_dir.parts)) if long else Path("runs") / run_dir.name[:40]
        what = (f"a folder name of {len(long[0][0].encode())} bytes ({long[0][0][:24]}...), over the {long[0][1]} "
                "it can have here" if long else f"files whose paths exceed the {path_max} bytes a path takes here")
        raise TwinActError(f"The run dir {str(run_dir)[:60]}... has {what}; use a shorter one, e.g. run_dir={short}.")
