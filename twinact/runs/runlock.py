"""One training process per run dir: a lock file in it that names its holder.

Two processes training in one run dir (a `resume=auto` sweep relaunched while its first launch still runs) would
interleave checkpoints and logs and collide at the export. The lock is `fcntl.flock` on `<run>/.twinact.lock`: the
kernel drops it when its holder ends however it ends (SIGKILL, out of memory; on NFS, a lost node once the server's
lease expires), so a lock file left behind by a dead process is stale by construction and is taken over with a
warning. The file's content (PID, host, start, command) is only for the message a refused process prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from twinact.errors import TwinActError
from twinact.runs.rundir import allocate_run_dir

log = logging.getLogger(__name__)

LOCK_NAME = ".twinact.lock"
_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")  # set for the worker processes of one DDP run


def is_launching_process() -> bool:
    """Whether this is the process that owns a run (not a DDP worker of it, which shares its rank 0's run dir)."""
    return all(os.environ.get(name, "0") == "0" for name in _RANK_VARS)


class RunLock:
    """Non-blocking exclusive lock of a run dir; `acquire` says whether it was free."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> bool:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError as err:  # a filesystem without locks (some FUSE mounts): run unguarded, and say so
                os.close(fd)
                log.warning("Cannot lock %s (%s); make sure no other process trains in this run dir.", self.path,
                            err.strerror)
                return True
            try:  # the holder before may have removed the file between our open and our lock: lock the new one
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        stale = os.read(fd, 4096).decode(errors="replace").strip()
        if stale:
            log.warning("Took over the stale lock of %s in %s: that process is gone.", _describe(_parse(stale)),
                        self.path.parent)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                                  "command": " ".join(sys.argv)}).encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> dict:
        """What the holder wrote: pid, host, since (epoch seconds), command; {} when unreadable or not yet written."""
        try:
            return _parse(self.path.read_text())
        except OSError:
            return {}

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: a process that opened it meanwhile sees it replaced
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _parse(content: str) -> dict:
    try:
        found = json.loads(content)
    except ValueError:
        return {}
    return found if isinstance(found, dict) and {"pid", "host", "since", "command"} <= found.keys() else {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"]))
    return f"pid {holder['pid']} on host {holder['host']} (since {since}: {holder['command']})"


def _refusal(run_dir: Path, lock: RunLock) -> TwinActError:
    holder = lock.holder()
    stop = (f"stop it (kill {holder['pid']}" + ("" if holder["host"] == socket.gethostname() else
                                                f" on {holder['host']}") + ": it writes last.ckpt first)"
            if holder else "stop it (it writes last.ckpt first)")
    return TwinActError(f"{run_dir} is in use by {_describe(holder)}; one process trains in a run dir at a time. "
                        f"Wait for it to end, or {stop} and relaunch with resume=auto.")


@contextlib.contextmanager
def locked_run_dir(run_dir: Path):
    """Hold `run_dir`'s lock (the folder made if missing, and removed again if it stays empty), or raise one
    `TwinActError` naming the process that holds it."""
    if not is_launching_process():
        yield
        return
    made = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir)
    if not lock.acquire():
        raise _refusal(run_dir, lock)
    try:
        yield
    finally:
        lock.release()
        if made:
            with contextlib.suppress(OSError):  # only an empty folder: nothing was written in it
                run_dir.rmdir()


@contextlib.contextmanager
def locked_new_run_dir(requested: Path):
    """A new run dir (`allocate_run_dir`: `requested` or the next free `requested-N`), locked while in use. Of two
    processes that chose the same new dir at once, the one that locks it first keeps it; the other moves on."""
    run_dir = allocate_run_dir(requested)
    lock = RunLock(run_dir)
    while is_launching_process() and not lock.acquire():
        run_dir = allocate_run_dir(requested)  # the winner's lock file makes its dir a used one
        lock = RunLock(run_dir)
    try:
        yield run_dir
    finally:
        lock.release()
