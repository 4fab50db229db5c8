"""Range, choice and cross-key checks on a composed training config, run before anything is loaded or written.

The schemas (`twinact/config/schema.py`) already refuse wrong types and misspelt keys when the config is composed;
these are the checks a type cannot express, in one place: the code below the config trusts what passed them. Each
names the key and a value that works when typed as shown. (`twinact.runs.overrides` checks command-line syntax, before
there is a config to check.)
"""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from twinact.errors import TwinActError
from twinact.paths import package_path

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
# (key, the values it may take; the first is the example)
CHOICES = (
    ("model.family", ("sd15", "sdxl")),
    ("model.dtype", ("auto", "fp32", "fp16", "bf16")),  # auto: follows trainer.precision
    ("model.latents", ("sample", "mean")),
    ("action_space.mode", ("per_slot", "pooled")),
    ("action_space.offset", ("init_word", "mean", "zero")),
    ("action_space.basis", ("pca", "random")),
    ("method.vectors", ("space", "free", "fixed")),
    ("method.coefficients", ("mlp", "direct")),
    ("loss.similarity.decode", ("x0", "eps_raw")),
    ("resume", ("never", "auto")),  # null: auto in a multirun, never otherwise
)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_training_config(cfg: DictConfig) -> None:
    """Raise one `TwinActError` for the first value no run could use."""
    for key, ok, must, example in RANGES:
        value = OmegaConf.select(cfg, key)
        if value is not None and not ok(value):
            raise TwinActError(f"{key}={value} must be {must}, e.g. {key}={example}.")
    check_choices(cfg)
    check_method(cfg)
    check_action(cfg.action)


def check_choices(cfg: DictConfig) -> None:
    """Every key of `CHOICES` the config has (the build_space config has no `method`) holds one of its values."""
    for key, allowed in CHOICES:
        value = OmegaConf.select(cfg, key)
        if value is not None and value not in allowed:
            raise TwinActError(f"{key}={value!r} is not one of {', '.join(allowed)}, e.g. {key}={allowed[0]}.")


def check_method(cfg: DictConfig) -> None:
    """What the method trains, and the settings that only mean something together."""
    m = cfg.method
    if m.lora and cfg.lora.rank <= 0:
        raise TwinActError(f"lora.rank={cfg.lora.rank} must be a positive integer; use method.lora=false to train "
                           "without LoRA.")
    if m.vectors == "fixed" and not m.lora:
        raise TwinActError("method.vectors=fixed with method.lora=false trains nothing; use method.lora=true or "
                           "method.vectors=space.")
    if m.max_norm is not None and m.max_norm != "vocab" and not _positive_number(m.max_norm):
        raise TwinActError(f"method.max_norm={m.max_norm!r} must be null, vocab or a positive number, e.g. "
                           "method.max_norm=vocab.")
    a = cfg.action_space
    if a.remove_appearance and not a.design_words:
        raise TwinActError("action_space.remove_appearance=true removes the directions of action_space.design_words, "
                           "which is empty; give actor words or set action_space.remove_appearance=false.")


def _positive_number(value) -> bool:
    try:
        return float(value) > 0
    except ValueError:
        return False


def check_action(a: DictConfig) -> None:
    """The action's tokens, captions, name and exemplar folder."""
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
