"""Check a command line's config overrides before Hydra runs, so each mistake is one line naming the key and a fix.

Hydra reports a bad override as a traceback-shaped block ("Error merging override ... Set HYDRA_FULL_ERROR=1"), and
takes `+lora.rnk=8` (its own advice for an unknown key) as a new key that nothing reads. Composing the same config
first with Hydra's compose API turns each into a `TwinActError`; sweeps are checked value by value (each swept value
with the other overrides as given), so `lora.rank=4,abc` names `abc`.
"""

from __future__ import annotations

import dataclasses
import difflib

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from twinact.config.compose import compose_config
from twinact.errors import TwinActError
from twinact.runs import commands
from twinact.runs.rundir import newest_finished_run

_PREFIX = {OverrideType.ADD: "+", OverrideType.FORCE_ADD: "++", OverrideType.DEL: "~", OverrideType.CHANGE: ""}
_TYPE_WORDS = {"Integer": "an integer", "Float": "a number", "bool": "true or false"}


def config_overrides(argv: list[str]) -> list[str]:
    """The config overrides of a command line (Hydra's own flags and `hydra.*` / `hydra/*` overrides left out)."""
    return [a for a in argv if not a.startswith("-") and "=" in a and not a.lstrip("+~").startswith("hydra")]


def _parse_error(lines: list[str], err: OverrideParseException) -> str:
    """The refused override and what to type instead. The shell has already removed any quotes a user typed around
    the value, so a value Hydra reads as syntax needs Hydra's quotes inside the shell's."""
    parser = OverridesParser.create()
    for line in lines:
        try:
            parser.parse_overrides([line])
        except OverrideParseException as one:
            fix = commands.hydra_quoted(line)
            where = _refused_character(line, str(one))
            what = f"Hydra reads {where!r} in it as syntax" if where else "Hydra cannot parse it"
            return f"{line}: {what}; " + (f"quote the value for Hydra inside the shell's quotes: {fix}." if fix else
                                          "see `python train.py --hydra-help` for the override syntax.")
    return str(err).splitlines()[0]


def _refused_character(line: str, message: str) -> str | None:
    """The character Hydra's parser stopped at (its message repeats the line, then marks the column with `^`)."""
    rows = message.splitlines()
    if len(rows) < 2 or "^" not in rows[1] or line not in rows[0]:
        return None
    column = rows[1].index("^") - rows[0].index(line)
    return line[column] if 0 <= column < len(line) else None


def _points(overrides: list[Override]) -> list[list[str]]:
    """One override list per swept value (the others as given; a sweep's first value stands in for it)."""
    def line(o: Override, value: str | None = None) -> str:
        if value is None:
            return o.input_line
        return f"{_PREFIX[o.type]}{o.get_key_element()}={value}"

    firsts = [line(o, next(iter(o.sweep_string_iterator()))) if o.is_sweep_override() else line(o) for o in overrides]
    points = [firsts]
    for i, o in enumerate(overrides):
        if o.is_sweep_override():
            points += [firsts[:i] + [line(o, v)] + firsts[i + 1:] for v in list(o.sweep_string_iterator())[1:]]
    return points


def _unknown_key(base: DictConfig, key: str) -> str:
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(base, parent_key) if parent_key else base
    known = list(parent.keys()) if isinstance(parent, DictConfig) else []
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"did you mean {parent_key + '.' if parent_key else ''}{close[0]}?" if close else \
        f"its group takes {', '.join(known)}" if known else "see `python train.py --cfg job`"
    return f"{key} is not a config key ({hint})."


def _message(err: Exception, override: str, base: DictConfig | None) -> str:
    cause = err.__cause__ or err
    key, _, value = override.lstrip("+~").partition("=")
    if isinstance(err, MissingConfigException) or "Could not find" in str(err):
        group = key.split("@")[0]
        options = [o for o in (err.options or []) if o != "schema"] if isinstance(err, MissingConfigException) else []
        return (f"{group}={value} is not an option of the {group} group"
                + (f"; choose one of {', '.join(options)} (e.g. {group}={options[0]})." if options else "."))
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and base is not None:
        return _unknown_key(base, key)
    if isinstance(cause, ValidationError):
        text = str(cause)
        wanted = "bool" if "valid bool" in text else text.split("converted to ")[-1].split()[0]
        example = OmegaConf.select(base, key) if base is not None else None
        if isinstance(example, bool):
            example = str(example).lower()
        return (f"{key}={value} is not {_TYPE_WORDS.get(wanted, 'a valid value')} "
                + (f"(e.g. {key}={example})." if example is not None else "."))
    return f"{override}: {str(cause).splitlines()[0]}"


def _structured(node) -> bool:
    return isinstance(node, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(node))


def check_overrides(argv: list[str], config_name: str = "train") -> None:
    """Raise `TwinActError` for the first override that Hydra would refuse or silently ignore."""
    lines = config_overrides(argv)
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except OverrideParseException as err:
        raise TwinActError(_parse_error(lines, err)) from None
    if any(o.is_sweep_override() for o in parsed) and not {"-m", "--multirun"} & set(argv):
        swept = next(o.input_line for o in parsed if o.is_sweep_override())
        raise TwinActError(f"{swept} lists several values: add -m to sweep them, or write a list as key=[a,b].")
    base = compose_config([], config_name)
    for point in _points(parsed):
        for override in point:
            if override.startswith("+") and not override.startswith("++"):
                key = override.lstrip("+").partition("=")[0]
                parent_key = key.rpartition(".")[0]
                parent = OmegaConf.select(base, parent_key) if parent_key else None
                if OmegaConf.select(base, key) is None and _structured(parent):
                    raise TwinActError(_unknown_key(base, key))
        try:
            compose_config(point, config_name)
        except (ConfigCompositionException, MissingConfigException, ValidationError) as err:
            culprit = _culprit(err, point)
            try:
                reference = compose_config([o for o in point if o != culprit], config_name)
            except Exception:  # noqa: BLE001 - only for an example value; the error below stands either way
                reference = base
            raise TwinActError(_message(err, culprit, reference)) from None
    missing = sorted(OmegaConf.missing_keys(compose_config(_points(parsed)[0], config_name)))
    if missing:
        raise TwinActError(_unset(missing[0], config_name))


def _unset(key: str, config_name: str) -> str:
    """A mandatory key (`???`) left out: so far only `run`, a finished run's directory."""
    newest = newest_finished_run()
    if newest is None:
        return (f"{key} is not set, and no finished run is under runs/: train one first (python train.py), then "
                f"give the run dir it prints as {key}=.")
    example = commands.command(f"{config_name}.py", commands.override(key, newest))
    return f"{key} is not set: give a finished run's dir, e.g. {example}"


def _culprit(err: Exception, point: list[str]) -> str:
    """The override an error is about (Hydra names it in its message or in the failing key)."""
    text = f"{err} {err.__cause__ or ''}"
    full_key = getattr(err.__cause__, "full_key", None)
    for override in point:
        key = override.lstrip("+~").partition("=")[0]
        if override in text or (full_key and key == full_key) or f"'{key}'" in text or f"{key}/" in text:
            return override
    return point[-1] if point else ""
