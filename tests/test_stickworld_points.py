"""A sweep's points in worker processes: order, one thread each, and stopping as a scheduler or Ctrl-C stops it."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from stickworld.protocol.points import run_points
from twinact.errors import Stopped


def _where_it_ran(overrides: list[str]) -> dict:
    import torch

    return {"overrides": overrides, "pid": os.getpid(), "threads": torch.get_num_threads()}


def test_points_run_in_one_thread_processes_in_order():
    todo = [[f"seed={i}"] for i in range(4)]
    here = run_points(_where_it_ran, todo, jobs=1)
    there = run_points(_where_it_ran, todo, jobs=2)
    assert [r["overrides"] for r in there] == todo == [r["overrides"] for r in here]
    assert {r["pid"] for r in here} == {os.getpid()}
    assert os.getpid() not in {r["pid"] for r in there} and {r["threads"] for r in there} == {1}


def test_a_stop_crosses_from_a_worker_with_its_signal():
    again = pickle.loads(pickle.dumps(Stopped("stopped at step 3", signal.SIGTERM)))
    assert isinstance(again, Stopped) and str(again) == "stopped at step 3" and again.exit_code == 143


# A point that trains like train() under CheckpointOnSignal: a stop signal is noted, and the next step's end writes
# the checkpoint (recording how many signals arrived) and stops.
FAKE_POINT = """
import pathlib, signal, time
from twinact.errors import Stopped

def train(overrides):
    run = pathlib.Path(overrides[0])
    run.mkdir()
    signals = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: signals.append(s))
    (run / "started").touch()
    for _ in range(600):
        if signals:
            time.sleep(0.5)  # a second signal in this window would be counted
            (run / "checkpoint").write_text(str(len(signals)))
            raise Stopped("stopped", signals[0])
        time.sleep(0.1)
    (run / "done").touch()
    return {}
"""


def _sweep(tmp_path, points: int = 4) -> tuple[subprocess.Popen, list]:
    (tmp_path / "fake_point.py").write_text(FAKE_POINT)
    runs = [tmp_path / f"point{i}" for i in range(points)]
    script = textwrap.dedent(f"""
        from fake_point import train
        from stickworld.protocol.points import run_points
        from twinact.runs.cli import user_errors
        with user_errors():
            run_points(train, {[[str(r)] for r in runs]!r}, jobs=2)
        """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    sweep = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)  # its own group, like a shell's foreground job
    deadline = time.time() + 120
    while sum((r / "started").exists() for r in runs) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert sum((r / "started").exists() for r in runs) == 2
    return sweep, runs


@pytest.mark.parametrize("how", ["scheduler", "ctrl_c"])
def test_a_stopped_sweep_checkpoints_its_running_points_and_starts_no_more(tmp_path, how):
    """SIGTERM to the sweep alone (a scheduler), or SIGINT to its whole terminal group (Ctrl-C): each running point
    gets one stop signal and writes its checkpoint; queued points never start; the sweep exits as the signal says."""
    sweep, runs = _sweep(tmp_path)
    try:
        if how == "scheduler":
            sweep.send_signal(signal.SIGTERM)
        else:
            os.killpg(sweep.pid, signal.SIGINT)
        _, err = sweep.communicate(timeout=60)
    finally:
        sweep.kill()
    signum = signal.SIGTERM if how == "scheduler" else signal.SIGINT
    assert sweep.returncode == 128 + signum, err
    assert f"twinact: stopped: the sweep was stopped by {signal.Signals(signum).name}" in err, err
    assert "Run the same command again" in err
    assert [(r / "checkpoint").read_text() for r in runs[:2]] == ["1", "1"]  # one signal each: not an abrupt end
    assert not any(r.exists() for r in runs[2:]) and not any((r / "done").exists() for r in runs)


def test_a_killed_sweeps_workers_die_with_it(tmp_path):
    """SIGKILL cannot be forwarded: the workers must not live on to train the queued points."""
    sweep, runs = _sweep(tmp_path)
    try:
        workers = [p for p in psutil.Process(sweep.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        sweep.kill()
        sweep.wait(timeout=30)
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive
    finally:
        sweep.kill()
    assert not any(r.exists() for r in runs[2:])
