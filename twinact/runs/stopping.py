"""How a run that cannot go on ends: the reason in train.log, one line for the entry point to print, and the command
that continues the run from what it wrote."""

from __future__ import annotations

import contextlib
import logging
import signal
from pathlib import Path

from twinact.errors import Stopped, WriteError
from twinact.runs.commands import resume_command
from twinact.runs.files import RunFiles

log = logging.getLogger(__name__)


def stopped(handler: logging.Handler, signum: int, step: int, total: int, run_dir: Path) -> Stopped:
    """Record in train.log why the run stopped; returns the error whose one line the entry point prints."""
    message = (f"{signal.Signals(signum).name} at step {step} of {total}: wrote "
               f"{RunFiles(run_dir).last_checkpoint}. Continue with: {resume_command(run_dir)}")
    to_log_file(handler, logging.WARNING, message)
    return Stopped(message, signum)


def write_failed(handler: logging.Handler, err: WriteError, run_dir: Path) -> WriteError:
    """The same for a write the OS refused: what failed, that nothing is lost, and how to continue."""
    message = (f"{err} Nothing written before is lost (checkpoints and exports are replaced whole); once that is "
               f"fixed, continue with: {resume_command(run_dir)}")
    to_log_file(handler, logging.ERROR, message)
    return WriteError(message)


def to_log_file(handler: logging.Handler, level: int, message: str) -> None:
    """One record in train.log only (the entry point prints the same line); skipped if the log cannot be written
    either (a full disk), rather than adding logging's own traceback."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, None)
    with contextlib.suppress(OSError, ValueError):
        handler.stream.write(handler.format(record) + handler.terminator)
        handler.stream.flush()
