"""Every config key an error or warning message names exists, so the fix it shows can be typed as shown.

The messages are read statically (`ast`) from `twinact/` and `stickworld/`: the text of every `raise TwinActError(...)`
(or of a subclass), of the variables such a raise passes on, and of `log.warning(...)`-style calls. Dotted lowercase
names in that text (`lora.rank`, `model.latents=mean`, `eval_suite.scorer.pose: false`) that start at a top-level
config key, are set (`=`, `:`) or end in a key's last part (`placeholder.offset`) must be a key, or a prefix of one, of
some composed config (every entry point, every group option); literal `name=value` fixes must compose.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

import pytest
from conftest import CONF, REPO, compose

SOURCES = [REPO / "twinact", REPO / "stickworld"]
ERROR_BASE = "TwinActError"
ENTRY_CONFIGS = ["train", "evaluate", "sample", "compare", "build_space"]
NOT_GROUPS = {"hydra", "local"}  # conf/ folders that are not option groups of train.yaml
LOG_CALLS = {"warning", "warn", "error", "critical", "exception"}  # log.warning, warnings.warn, parser.error, ...
# File names look like keys (`model.safetensors`, `config.yaml`): their last part is a suffix, never a config key.
FILE_SUFFIXES = {"json", "yaml", "yml", "ckpt", "safetensors", "bin", "pt", "pth", "png", "jpg", "jpeg", "webp",
                 "txt", "tsv", "csv", "log", "md", "py", "gz", "zip", "whl", "tflite", "task"}
# A dotted lowercase name not inside a word, path or module path (`twinact.models`, `<run>/export/twinact.json`).
DOTTED = re.compile(r"(?<![\w./<{-])([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?!\.?[\w(/-])")
# `name=value` with a literal value (no f-string field, no <placeholder>): what a user would paste.
OVERRIDE = re.compile(r"(?<![\w./<{-])([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)=([\w-]+(?:[.:/][\w-]+)*)(?![\w{<>\[])")
HOLE = "{}"  # stands for an f-string's replacement field: code, not message text


# --- extracting the messages --------------------------------------------------------------------------------------

def error_classes(trees: list[ast.Module]) -> set[str]:
    """TwinActError and every class deriving from it (transitively, across the given modules)."""
    names, bases = {ERROR_BASE}, {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
    grew = True
    while grew:
        new = {name for name, b in bases.items() if b & names} - names
        names |= new
        grew = bool(new)
    return names


def _called_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _texts(node: ast.AST, assigned: dict[str, list[ast.expr]], seen: frozenset = frozenset()):
    """(string node, text) for every string literal in `node`, f-string fields replaced by HOLE; a variable is
    followed to what its scope assigns to it."""
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values)
        yield node, text
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node, node.value
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in seen:
        for value in assigned.get(node.id, []):
            yield from _texts(value, assigned, seen | {node.id})
    elif not isinstance(node, ast.FormattedValue):
        for child in ast.iter_child_nodes(node):
            yield from _texts(child, assigned, seen)


def _assignments(scope: ast.AST) -> dict[str, list[ast.expr]]:
    out: dict[str, list[ast.expr]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                out.setdefault(target.id, []).append(node.value)
    return out


def message_texts(tree: ast.Module, errors: set[str]) -> list[tuple[ast.expr, str]]:
    """(string node, text) of every user-facing message: raised errors, their variables, log/warning calls, and the
    messages error subclasses pass to `super().__init__`."""
    found = {}
    scopes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for scope in scopes:
        assigned = _assignments(scope)
        for node in ast.walk(scope):
            args: list[ast.expr] = []
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _called_name(node.exc) in errors:
                args = [*node.exc.args, *(k.value for k in node.exc.keywords)]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
                  and node.func.attr in LOG_CALLS and isinstance(node.func.value, ast.Name)):
                args = node.args[:1]
            for arg in args:
                for string, text in _texts(arg, assigned):
                    found[id(string)] = (string, text)
    for cls in ast.walk(tree):
        if isinstance(cls, ast.ClassDef) and cls.name in errors:
            for node in ast.walk(cls):
                if isinstance(node, ast.Call) and _called_name(node) == "__init__":
                    for arg in node.args:
                        for string, text in _texts(arg, {}):
                            found[id(string)] = (string, text)
    return list(found.values())


def config_refs(text: str, keys: set[str]) -> list[str]:
    """The config keys a message names: dotted names that start at a top-level key, or that are set (`name=value`,
    `name: value`) or end in a key's last part (`placeholder.offset`, a wrong group for `action_space.offset`).
    Left out: file names, hydra.*, and module paths (`twinact.models`, `torch.optim`: the first part imports)."""
    top_level, leaves = {k.split(".")[0] for k in keys}, {k.rsplit(".", 1)[-1] for k in keys}
    refs = []
    for match in DOTTED.finditer(text):
        ref = match.group(1)
        first, last = ref.split(".")[0], ref.rsplit(".", 1)[1]
        if first == "hydra" or last in FILE_SUFFIXES:
            continue
        is_set = text[match.end():match.end() + 1] in ("=", ":")
        if first in top_level or ((is_set or last in leaves) and not _is_module(first)):
            refs.append(ref)
    return refs


@functools.lru_cache
def _is_module(name: str) -> bool:
    return (REPO / name).is_dir() or importlib.util.find_spec(name) is not None


def missing_keys(source: str, filename: str, keys: set[str], errors: set[str] | None = None) -> list[str]:
    """`file:line: key  (in: message)` for every key a message in `source` names that `keys` lacks."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    out = []
    for string, text in message_texts(tree, errors or error_classes([tree])):
        for ref in config_refs(text, keys):
            if ref in keys:
                continue
            span = range(string.lineno, (string.end_lineno or string.lineno) + 1)
            line = next((n for n in span if ref in lines[n - 1]), string.lineno)
            out.append(f"{filename}:{line}: {ref}  (in: {text.replace(HOLE, '...')!r})")
    return out


# --- the keys that exist ------------------------------------------------------------------------------------------

def _paths(tree, prefix: str = ""):
    """Every key of a nested config and every prefix of one ("a", "a.b", "a.b.c")."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            name = f"{prefix}{key}"
            yield name
            yield from _paths(value, name + ".")


def _override_sets() -> list[tuple[str, list[str]]]:
    sets = [(name, []) for name in ENTRY_CONFIGS]
    groups = sorted(p for p in CONF.iterdir() if p.is_dir() and p.name not in NOT_GROUPS and any(p.glob("*.yaml")))
    sets += [("train", [f"{g.name}={o.stem}"]) for g in groups for o in sorted(g.glob("*.yaml"))]
    return sets


@functools.lru_cache(maxsize=1)
def config_keys() -> frozenset[str]:
    """Keys (and key prefixes) of every entry point's config and of train.yaml with each group option swapped in."""
    from omegaconf import OmegaConf

    keys = set()
    for name, overrides in _override_sets():
        keys |= set(_paths(OmegaConf.to_container(compose(overrides, name), resolve=False)))
    return frozenset(keys)


def _sources() -> list[Path]:
    return sorted(p for root in SOURCES for p in root.rglob("*.py"))


# --- the tests ----------------------------------------------------------------------------------------------------

def test_every_key_an_error_message_names_exists():
    files = _sources()
    trees = [ast.parse(p.read_text(), str(p)) for p in files]
    errors = error_classes(trees)
    keys = set(config_keys())
    assert {"lora.rank", "model.latents", "action_space.max_components", "eval_suite.scorer.pose"} <= keys
    missing = [m for p in files for m in missing_keys(p.read_text(), str(p.relative_to(REPO)), keys, errors)]
    assert not missing, "error messages name config keys that do not exist:\n" + "\n".join(missing)


def test_every_override_an_error_message_shows_composes():
    """`lora=none`, `model.latents=mean`, `method.use_8bit_adam=true`...: typed as shown, the config composes."""
    keys = config_keys()
    shown = {}
    files = _sources()
    trees = [ast.parse(p.read_text(), str(p)) for p in files]
    errors = error_classes(trees)
    for p, tree in zip(files, trees):
        for string, text in message_texts(tree, errors):
            for name, value in OVERRIDE.findall(text):
                if name in keys:
                    shown.setdefault(f"{name}={value}", f"{p.relative_to(REPO)}:{string.lineno}")
    assert shown, "no override found in any message: the extractor is broken"
    broken = []
    for override, where in sorted(shown.items()):
        errors = []
        for name in ENTRY_CONFIGS:
            try:
                compose([override], name)
                break
            except Exception as err:  # noqa: BLE001 - any failure to compose is the finding
                errors.append(f"{name}: {str(err).splitlines()[0]}")
        else:
            broken.append(f"{where}: {override}  ({'; '.join(errors)})")
    assert not broken, "overrides shown in error messages do not compose:\n" + "\n".join(broken)


SYNTHETIC = '''
from twinact.errors import TwinActError

class NoLatentsError(TwinActError):
    def __init__(self):
        super().__init__("set model.latentz=mean")

def check(cfg, rank):
    if rank < 1:
        raise TwinActError(f"lora.rank={rank} must be positive ({cfg.lora.rnk} in code is not a message).")
    message = f"lora.rnak={rank} is unknown; see model_index.json, twinact.models and hydra.run.dir."
    if rank > 64:
        raise TwinActError(message.splitlines()[0])
    log.warning("model.latents: mean is what %s wants; lora.alfa too", rank)
    print("model.not_a_message is not checked")
'''


def test_the_extractor_reports_the_fake_keys_and_only_them():
    keys = {"lora", "lora.rank", "model", "model.latents"}
    missing = missing_keys(SYNTHETIC, "synthetic.py", keys)
    assert [m.split("  (in:")[0] for m in sorted(missing)] == [
        "synthetic.py:11: lora.rnak", "synthetic.py:14: lora.alfa", "synthetic.py:6: model.latentz",
    ], missing


KEYS = {"action_space", "action_space.offset", "eval_suite", "eval_suite.scorer", "eval_suite.scorer.pose", "lora",
        "lora.rank", "model", "model.pretrained", "loss", "loss.similarity", "loss.similarity.decode", "data",
        "export", "method", "method.use_8bit_adam"}


@pytest.mark.parametrize("text,refs", [
    ("action_space.offset='x' is not one of init_word, mean, zero.", ["action_space.offset"]),
    ("set eval_suite.scorer.pose: false, or lora.rank=8.", ["eval_suite.scorer.pose", "lora.rank"]),
    ("model.pretrained={} has no model_index.json; see <run>/export/twinact.json or model.safetensors",
     ["model.pretrained"]),
    ("twinact.models.load(), data.py and loss.similarity.* (loss.similarity)", ["loss.similarity", "loss.similarity"]),
    # Wrong groups: not a top-level key, but set with = or ending in a real key's last part.
    ("placeholder.offset={} is bad; optim.use_8bit_adam=true; decoder.decode too", [
        "placeholder.offset", "optim.use_8bit_adam", "decoder.decode"]),
    ("e.g. torch.optim.AdamW or sys.path: ok, checkpoints.dir", []),
])
def test_config_refs(text, refs):
    assert config_refs(text, KEYS) == refs
