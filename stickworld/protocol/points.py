"""A sweep's points, run here or in worker processes of one thread each, and a sweep that stops cleanly.

A scheduler stops a sweep by signalling its process alone (SIGTERM; Ctrl-C reaches a terminal's foreground group).
On SIGTERM or SIGINT the sweep sends each worker one SIGTERM: a training run writes its checkpoint at the end of the
current optimizer step and stops (:class:`twinact.train.callbacks.CheckpointOnSignal`), so a rerun redoes nothing;
points not yet started are not started. The sweep then exits as a signal reports (128 + its number). Workers sit in
their own process group, so Ctrl-C reaches them only through the sweep: a second stop signal would end a run at once,
without its checkpoint. A sweep killed outright (SIGKILL) takes its workers with it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from twinact.errors import Stopped
from twinact.runs.console import progress_to_console

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_stop_requested = None  # a worker's view of the sweep's stop event


def _stop_here(signum, frame) -> None:
    """A worker's handler outside training (starting up, evaluating): stop the point where it is."""
    raise Stopped(f"stopped by {signal.Signals(signum).name}", signum)


def _worker_start(parent: int, stop) -> None:
    """One torch thread, a process group of its own, and (Linux) killed with the parent: a worker outliving a killed
    sweep would take the next queued point and train on."""
    global _stop_requested
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)
    os.setpgrp()
    _stop_requested = stop
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop_here)
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def _tagged(point: tuple[Callable[[list[str]], dict], str, list[str]]) -> dict:
    fn, tag, overrides = point
    if _stop_requested is not None and _stop_requested.is_set():
        raise Stopped("not started: the sweep was stopped", signal.SIGTERM)
    progress_to_console(tag)
    return fn(overrides)


def run_points(fn: Callable[[list[str]], dict], todo: list[list[str]], jobs: int = 1,
               labels: list[str] | None = None) -> list[dict]:
    """``fn`` of each point's overrides, in order: here, or in ``jobs`` fresh processes of one torch thread each
    (processes that each take every core spin against each other: docs/sweeps.md). Each label is printed as its
    point starts (all at once when the points run together); the runs' progress lines follow, tagged with the
    label's leading ``[n/N]``.

    Raises:
        Stopped: the sweep was signalled; the running points wrote their checkpoints.
    """
    labels = labels or [""] * len(todo)
    points = [(fn, label.split(" ", 1)[0] + " " if label.startswith("[") else "", o) for label, o in zip(labels, todo)]
    if jobs <= 1:
        results = []
        for label, point in zip(labels, points):
            print(label, flush=True)
            results.append(_tagged(point))
        return results
    print("\n".join(labels), flush=True)
    context = multiprocessing.get_context("spawn")
    stop, caught = context.Event(), []

    def forward(signum, frame):
        caught.append(signum)
        stop.set()  # before the signal: a worker between points must not start the next one
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGTERM)

    with _handling(forward), ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_start,
                                                 initargs=(os.getpid(), stop)) as pool:
        futures = [pool.submit(_tagged, p) for p in points]
        try:
            return [f.result() for f in futures]
        except BaseException as err:
            for f in futures:  # leaving the pool waits for what was submitted, so nothing else may start
                f.cancel()
            if not (caught and isinstance(err, (Stopped, BrokenProcessPool))):
                raise
    name = signal.Signals(caught[0]).name
    raise Stopped(f"the sweep was stopped by {name}; each running point wrote its checkpoint. Run the same command "
                  "again to continue: finished points are skipped, stopped ones resume.", caught[0])


class _handling:
    """Install ``handler`` for the stop signals while the pool runs (main thread only), then restore what was
    there."""

    def __init__(self, handler):
        self.handler, self.previous = handler, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self.handler) for sig in STOP_SIGNALS}

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
