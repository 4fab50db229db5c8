"""What users and schedulers hit around a run: signals, two processes in one run dir, compare.py, full disks, limits."""

from __future__ import annotations

import csv
import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, compose, fast_overrides
from test_faults import _weights

from twinact.errors import TwinActError
from twinact.eval.compare import compare
from twinact.train.training import train

# Run train.py as a scheduler would, holding the step `n` until the test has sent its signal (then the signal is
# known to land inside that step).
HOLD_AT_STEP = r"""
import runpy, sys, time
from pathlib import Path
from twinact.method.module import TwinActModule

at, sent, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
real = TwinActModule.training_step
def training_step(self, *a, **k):
    if self.global_step == n and not at.exists():
        at.touch()
        deadline = time.time() + 120
        while not sent.exists() and time.time() < deadline:
            time.sleep(0.02)
    return real(self, *a, **k)
TwinActModule.training_step = training_step
sys.argv = ["train.py", *sys.argv[4:]]
runpy.run_path("train.py", run_name="__main__")
"""


def _overrides(tmp_path: Path, run: str = "run") -> list[str]:
    return fast_overrides(tmp_path) + [f"run_dir={tmp_path / run}", "lora.alpha=8", "method.stage2.lora_lr=1e-2"]


def _start(tmp_path: Path, overrides: list[str], step: int) -> tuple[subprocess.Popen, Path, Path]:
    at, sent = tmp_path / f"at_{step}", tmp_path / f"sent_{step}"
    proc = subprocess.Popen([sys.executable, "-c", HOLD_AT_STEP, str(at), str(sent), str(step), *overrides],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not at.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    return proc, at, sent


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    return _weights(train(compose(_overrides(tmp))).run_dir / "export")


@pytest.mark.parametrize("name,code", [("TERM", 143), ("INT", 130)])
def test_a_signal_stops_training_at_a_checkpoint_and_the_printed_command_resumes_it_exactly(tmp_path, straight,
                                                                                            name, code):
    proc, _, sent = _start(tmp_path, _overrides(tmp_path), step=1)
    subprocess.run(["kill", f"-{name}", str(proc.pid)], check=True)
    sent.touch()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err and "Received SIGTERM" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"twinact: stopped: SIG{name} at step 2 of 4: wrote "), last
    run = tmp_path / "run"
    assert f"SIG{name} at step 2 of 4" in (run / "train.log").read_text()
    assert not (run / "export").exists() and not (run / "FAILED").exists()

    resume = last.split("Continue with: ", 1)[1]
    assert resume.endswith("resume=auto")
    done = subprocess.run(["bash", "-c", resume], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _weights(run / "export") == straight


def test_a_second_signal_ends_the_process_at_once_and_leaves_whole_checkpoints(tmp_path):
    from twinact.train.checkpoint_io import newest_readable

    proc, _, sent = _start(tmp_path, _overrides(tmp_path), step=1)
    for _ in range(2):
        subprocess.run(["kill", "-TERM", str(proc.pid)], check=True)
    proc.communicate(timeout=120)
    sent.touch()
    assert proc.returncode == -signal.SIGTERM  # ended by the signal itself: a shell reports 143
    path, ckpt = newest_readable(tmp_path / "run" / "checkpoints")
    assert ckpt["global_step"] == 1 and not list(path.parent.glob(".*tmp*"))


def test_a_second_process_in_a_busy_run_dir_is_refused_in_one_line(tmp_path):
    """A `resume=auto` relaunch and a sweep relaunch (`-m`: resume is auto there) while the first launch trains."""
    overrides = _overrides(tmp_path) + ["resume=auto"]
    first, _, sent = _start(tmp_path, overrides, step=1)
    try:
        for extra in (["resume=auto"], ["-m"]):
            second = subprocess.run([sys.executable, "train.py", *_overrides(tmp_path), *extra], cwd=REPO,
                                    capture_output=True, text=True, timeout=300)
            assert second.returncode == 2, second.stderr[-3000:]
            assert second.stderr.strip().splitlines()[-1].startswith(
                f"twinact: error: {tmp_path / 'run'} is in use by pid {first.pid} on host "), second.stderr[-3000:]
            assert "Traceback" not in second.stderr
    finally:
        sent.touch()
    assert first.wait(timeout=300) == 0, first.communicate()[1][-3000:]
    run = tmp_path / "run"
    assert (run / "export" / "twinact.json").is_file() and not (run / ".twinact.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["cache", "run"]  # nothing trained beside it


HOLD_LOCK = r"""
import os, signal, sys, time
from pathlib import Path
from twinact.runs.runlock import RunLock
assert RunLock(Path(sys.argv[1])).acquire()
Path(sys.argv[1], "held").touch()
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(120)
"""


def _hold_lock(run_dir: Path, how: str) -> subprocess.Popen:
    run_dir.mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir), how], cwd=REPO)
    deadline = time.time() + 60
    while not (run_dir / "held").exists():
        assert time.time() < deadline
        time.sleep(0.05)
    return proc


def test_a_lock_names_its_live_holder_and_a_dead_holders_lock_is_taken_over(tmp_path, caplog):
    from twinact.runs.runlock import RunLock

    live = _hold_lock(tmp_path / "a", "hold")
    try:
        lock = RunLock(tmp_path / "a")
        assert not lock.acquire() and lock.holder()["pid"] == live.pid
    finally:
        live.kill()
        live.wait()
    dead = _hold_lock(tmp_path / "b", "die")
    dead.wait()
    assert (tmp_path / "b" / ".twinact.lock").exists()  # left behind by SIGKILL
    lock = RunLock(tmp_path / "b")
    with caplog.at_level("WARNING", logger="twinact.runs.runlock"):
        assert lock.acquire()
    assert f"stale lock of pid {dead.pid} on host " in caplog.text
    lock.release()
    assert not (tmp_path / "b" / ".twinact.lock").exists()


def test_compare_tabulates_finished_runs_and_says_what_it_left_out(tiny_cfg, tmp_path):
    def run(name: str, *extra: str):
        overrides = [f"run_dir={tmp_path / 'runs' / name}", "run_group=g", "logger=csv", "resume=auto", *extra]
        try:
            train(tiny_cfg(*overrides, stage1=1, stage2=2))
        except TwinActError:
            pass  # the diverging run
        return tmp_path / "runs" / name

    run("a"), run("b", "seed=1"), run("e", "lora.rank=8")
    f = run("f", "lora.rank=8", "seed=1", "logger=none")  # no metrics.csv: no training loss
    failed = run("c", "seed=2", "method.stage1.lr=1e30")
    unfinished = run("d", "seed=3", "trainer.stop_after_steps=2")
    assert (failed / "FAILED").is_file() and not (unfinished / "export").exists()

    table, _ = compare(run_group="g", root=str(tmp_path / "runs"))
    rows = {line.split(" | ")[0]: line for line in table.splitlines() if line.startswith("| 4 ") or
            line.startswith("| 8 ")}
    assert re.search(r"\| 2 \| \d\.\d{4} ± \d\.\d{4} \(n=2\) \|$", rows["| 4"]), table
    assert re.search(r"\| 2 \| \d\.\d{4} \(n=1\) \|$", rows["| 8"]), table  # one run with the metric: no interval
    assert "Included: 4 runs, all finished." in table
    assert f"- {failed}: failed (the loss became non-finite" in table
    assert f"- {unfinished}: unfinished (last logged step 2 of 3)" in table
    assert f"- {f}: missing final_train_mse (left out of that column only)" in table

    everything, _ = compare(run_group="g", root=str(tmp_path / "runs"), include="all")
    assert "Included: 6 runs, 2 of them not finished:" in everything and f"- {unfinished}: unfinished" in everything


@pytest.mark.parametrize("override,message", [
    ("action.name=" + "a" * 250, r"^action.name is 250 characters; it names the export's a+\.\.\. and file names take "
                                 r"at most 255 bytes here: keep it to 243 or fewer, e.g. action.name=a{40}\.$"),
    ("run_dir={tmp}/" + "b" * 300 + "/run", r"^The run dir .* has a folder name of 300 bytes \(b{24}\.\.\.\), over the "
                                            r"255 it can have here; use a shorter one, e.g. run_dir=.*/b{40}/run\.$"),
])
def test_names_and_paths_that_cannot_become_files_are_refused_before_training(tiny_cfg, tmp_path, override, message):
    with pytest.raises(TwinActError, match=message):
        train(tiny_cfg(override.format(tmp=tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, nothing trained


def test_a_full_disk_while_checkpointing_is_one_line_in_train_log_and_resume_takes_the_latest_step(
        tmp_path, straight, monkeypatch, caplog):
    """The save of last.ckpt after step 3 fails (step000003.ckpt was written just before); the rerun resumes from
    the latest step and exports what a straight run exports."""
    from pytorch_lightning.plugins.io import TorchCheckpointIO

    from twinact.errors import WriteError

    real = TorchCheckpointIO.save_checkpoint

    def full(self, checkpoint, path, storage_options=None):
        if ".last.ckpt" in str(path) and checkpoint["global_step"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, checkpoint, path, storage_options)

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", full)
    run, overrides = tmp_path / "run", _overrides(tmp_path) + ["resume=auto"]
    with pytest.raises(WriteError) as err:
        train(compose(overrides))
    message = str(err.value)
    assert message.startswith(f"could not write {run / 'checkpoints' / 'last.ckpt'}: No space left on device. "
                              "Nothing written before is lost"), message
    assert message.endswith("resume=auto") and message in (run / "train.log").read_text()
    monkeypatch.undo()
    with caplog.at_level("WARNING", logger="twinact.train.checkpoint_io"):
        train(compose(overrides))
    assert "last.ckpt (step 2) is older than step000003.ckpt; resuming from the latest step." in caplog.text
    assert _weights(run / "export") == straight


def test_a_full_disk_while_exporting_is_one_line_and_resume_exports_exactly(tmp_path, straight, monkeypatch):
    from safetensors import SafetensorError

    from twinact.errors import WriteError
    from twinact.release import export

    real = export.save_file

    def full(tensors, filename, *args, **kwargs):
        if filename.endswith("twinact_state.safetensors"):
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(export, "save_file", full)
    run, overrides = tmp_path / "run", _overrides(tmp_path) + ["resume=auto"]
    with pytest.raises(WriteError, match=rf"^could not write {run / 'export'}: No space left on device\. Nothing"):
        train(compose(overrides))
    assert not (run / "export").exists() and not (run / ".export.partial").exists()
    assert "No space left on device" in (run / "train.log").read_text()
    monkeypatch.undo()
    train(compose(overrides))
    assert _weights(run / "export") == straight


# train.py as a scheduler runs it, with a per-file size limit from the first checkpoint on: the kernel refuses the
# write (EFBIG) as it would refuse one on a full disk (ENOSPC).
FILE_SIZE_LIMIT = r"""
import resource, runpy, signal, sys
import twinact.train.fit as fit
real = fit.build_trainer
def build_trainer(*args, **kwargs):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    return real(*args, **kwargs)
fit.build_trainer = build_trainer
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_an_os_error_while_writing_is_one_line_naming_the_path_and_the_cause(tmp_path):
    proc = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT, *_overrides(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    ckpt = tmp_path / "run" / "checkpoints" / "step000001.ckpt"
    assert lines[-1].startswith(f"twinact: error: could not write {ckpt}: File too large. Nothing written before is "
                                "lost"), lines[-1]
    assert lines[-1].removeprefix("twinact: error: ") in (tmp_path / "run" / "train.log").read_text()


def test_a_run_shorter_than_the_logging_interval_writes_its_metrics_and_resumes_without_lightning_warnings(tmp_path):
    overrides = [o for o in _overrides(tmp_path) if not o.startswith(("logger=", "trainer.log_every_n_steps="))]
    overrides += ["logger=csv", "resume=auto"]  # and the default interval, 10 steps, longer than the 4-step run
    first = subprocess.run([sys.executable, "train.py", *overrides, "trainer.stop_after_steps=2"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    second = subprocess.run([sys.executable, "train.py", *overrides], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
    assert "exists and is not empty" not in second.stdout + second.stderr
    assert re.search(r"Done: 4 steps in .*, last logged loss \d\.\d{4}\.", second.stdout + second.stderr)
    for version in ("version_0", "version_1"):  # each process logs its last step
        rows = list(csv.DictReader((tmp_path / "run" / "logs" / version / "metrics.csv").read_text().splitlines()))
        assert [r for r in rows if r.get("train/loss")], (version, rows)
