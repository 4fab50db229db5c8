"""Commands printed for a user to paste: every value quoted for Hydra's override parser, then for the shell.

A value Hydra reads as syntax (`<a1>`, `a,b`, `x=y`, `123` for a path) is wrapped in Hydra's own double quotes
(`QuotedString`); the whole `key=value` word is then quoted for the shell (`shlex.quote`, whose single quotes bash
and zsh both take literally), so `'prompt="a polar bear <a1>"'` reaches Hydra as typed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Quote, QuotedString
from hydra.errors import HydraException

from twinact.runs.rundir import task_overrides


def _reads_back(key: str, text: str) -> bool:
    """Whether Hydra reads `key=text` as the string `text` itself."""
    try:
        value = OverridesParser.create().parse_override(f"{key}={text}").value()
    except HydraException:
        return False
    return isinstance(value, str) and value == text


def override(key: str, value: object) -> str:
    """`key=value` as one shell word that Hydra reads back as the string `value`."""
    text = str(value)
    if not _reads_back(key, text):
        text = QuotedString(text=text, quote=Quote.double).with_quotes()
    return shlex.quote(f"{key}={text}")


def hydra_quoted(line: str) -> str | None:
    """A refused override line as one shell word Hydra reads (its value in Hydra's quotes); None when quoting the
    value would not help (no `=`, or the key is what Hydra refuses)."""
    key, sep, value = line.partition("=")
    if not sep or not key.strip():
        return None
    quoted = f"{key}={QuotedString(text=value, quote=Quote.double).with_quotes()}"
    try:
        parsed = OverridesParser.create().parse_override(quoted)
    except HydraException:
        return None
    return shlex.quote(quoted) if parsed.value() == value else None


def python() -> str:
    """The running interpreter as the user can type it: its name when that is what PATH finds, else its path
    (relative to the working directory when inside it, as `.venv/bin/python`)."""
    exe = Path(sys.executable)
    found = shutil.which(exe.name)
    if found and Path(found).resolve() == exe.resolve():
        return exe.name
    return _as_typed(exe)


def _as_typed(path: Path) -> str:
    """`path` relative to the working directory when inside it, else absolute; quoted for the shell."""
    relative = os.path.relpath(path)
    return shlex.quote(relative if not relative.startswith("..") else str(Path(path).absolute()))


def script(name: str) -> str:
    """The entry point `name` (e.g. `sample.py`) as typed from the working directory: beside the script that runs
    now when that is one of twinact's, else the bare name (the repository root)."""
    running = Path(sys.argv[0]) if sys.argv and sys.argv[0].endswith(".py") else None
    if running is not None and (running.parent / name).is_file():
        return _as_typed(running.parent / name)
    return name


def command(entry: str, *words: str) -> str:
    """`python <entry> <words...>`; `words` are already quoted (see `override`)."""
    return " ".join([python(), script(entry), *words])


# Not repeated in a resume command: it names the dir and the mode itself, and finds the checkpoint; an absolute
# step limit already reached would stop the resumed process at once.
_NOT_RESUMED = ("run_dir", "resume", "ckpt_path", "trainer.stop_after_steps")


def resume_command(run_dir: Path) -> str:
    """The command that continues the run in `run_dir` where it stopped: this job's overrides (in a sweep, this
    point's values), then `run_dir=<it> resume=auto`."""
    kept = [o for o in task_overrides() if o.lstrip("+~").partition("=")[0] not in _NOT_RESUMED]
    return command("train.py", *map(shlex.quote, kept), override("run_dir", run_dir), "resume=auto")


def sample_command(run_dir: Path, prompt: str) -> str:
    return command("sample.py", override("run", run_dir), override("prompt", prompt))
