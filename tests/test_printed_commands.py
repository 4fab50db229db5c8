"""Commands printed by a run, a model card and the docs paste into bash and zsh as printed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from twinact.runs.overrides import check_overrides
from twinact.train.training import train


# Run train.py as a scheduler would, holding the step `n` until the test has sent its signal (then the signal is
# known to land inside that step).
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_printed_sample_command_pastes_into_the_shell_as_printed(tiny_cfg, tmp_path, caplog, shell):
    if not shutil.which(shell):
        pytest.skip(f"{shell} is not installed")
    run_dir = tmp_path / "my runs" / "a,b=c"  # a space for the shell; a comma and `=` for Hydra
    with caplog.at_level("INFO", logger="twinact.train.fit"):
        run = train(tiny_cfg(f'run_dir="{run_dir}"', "callbacks.sample_steps=2")).run_dir
    assert run == run_dir
    tried = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Try it: "))
    command = tried.removeprefix("Try it: ")
    out = subprocess.run([shell, "-c", command], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    written = Path(out.stdout.strip().splitlines()[-1].removeprefix("Wrote ")).parent
    assert (written / "prompts.txt").read_text() == "a polar bear <a1> <a2> <a3>\n"

    card = (run / "export" / "README.md").read_text()
    evaluate = re.search(r"`([^`]*evaluate\.py [^`]*)`", card).group(1)
    [argv] = _argv_in(shell, evaluate, tmp_path)
    check_overrides(argv[1:], "evaluate")
    assert argv[1] == f"run={run}" or argv[1] == f'run="{run}"'


# An entry point of this repository as the README or a card writes it, and the shell lines that set `run=` for it.
_ENTRY = re.compile(r"^(?:\.venv/bin/)?python ((?:train|sample|evaluate|compare|build_space)\.py)\b")


def _argv_in(shell: str, script: str, cwd: Path) -> list[list[str]]:
    """The argv each entry-point command in `script` gets from `shell` (the interpreter swapped for a printer)."""
    printer = "args() { printf '%s\\037' \"$@\"; printf '\\036'; }\n"
    body = "\n".join(_ENTRY.sub(r"args \1", line) for line in script.splitlines())
    out = subprocess.run([shell, "-c", printer + body], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [record.split("\x1f")[:-1] for record in out.stdout.split("\x1e")[:-1]]


def _readme_scripts() -> list[str]:
    """Each bash block's `run=` and entry-point lines (continuations joined), and each inline entry-point command,
    in README.md and every docs/ page."""
    scripts = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
            kept = [line for line in lines if line.startswith("run=") or _ENTRY.match(line)]
            if any(_ENTRY.match(line) for line in kept):
                scripts.append("\n".join(kept))
        for inline in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
            command = " ".join(inline.split())
            if _ENTRY.match(command):
                scripts.append(command)
    return scripts


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_every_readme_command_reaches_hydra_as_printed(tmp_path, shell):
    if not shutil.which(shell):
        pytest.skip(f"{shell} is not installed")
    scripts = _readme_scripts()
    assert len(scripts) >= 8
    for script in scripts:
        commands = _argv_in(shell, script, tmp_path)
        assert commands, script
        for argv in commands:
            check_overrides(argv[1:], argv[0].removesuffix(".py"))
