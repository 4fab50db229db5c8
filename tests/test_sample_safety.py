"""sample.py and evaluate.py on a finished run: ranges checked before loading, progress, images written as made,
an interrupted call keeps them, a damaged export named in one error."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, compose, fast_overrides

from twinact.errors import TwinActError
from twinact.train.training import train


# Run train.py as a scheduler would, holding the step `n` until the test has sent its signal (then the signal is
# known to land inside that step).
@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny run whose renders take a moment (2 DDIM steps)."""
    tmp = tmp_path_factory.mktemp("finished")
    return train(compose(fast_overrides(tmp) + ["callbacks.sample_steps=2"])).run_dir


def _sample(args: list[str], cwd: Path = REPO, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "sample.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, **popen)


@pytest.mark.parametrize("args,message", [
    (["num_images=0"], "num_images=0 must be at least 1 (images per prompt), e.g. num_images=4."),
    (["num_images=-1"], "num_images=-1 must be at least 1"),
    (["steps=0"], "steps=0 must be at least 1 (DDIM steps), e.g. steps=25"),
    ([], "run is not set, and no finished run is under runs/: train one first"),
])
def test_sample_refuses_bad_values_in_one_line_before_loading_anything(finished, tmp_path, args, message):
    run = [f"run={finished}"] if args else []
    out = _sample(run + args, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [f"twinact: error: {out.stderr.split(': ', 2)[2]}"
                                                                      .strip()], out.stderr[-2000:]
    assert message in out.stderr and "random weights" not in out.stdout + out.stderr  # the model was not loaded


def test_sample_names_the_newest_run_when_run_is_missing(finished, tmp_path):
    (tmp_path / "runs" / "g").mkdir(parents=True)
    shutil.copytree(finished, tmp_path / "runs" / "g" / "kick")
    out = _sample([], cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().endswith("sample.py run=runs/g/kick"), out.stderr[-2000:]


# CI=true makes transformers hand its records to the root logger's handlers too: the notices must stay out either way.
@pytest.mark.parametrize("ci", ["", "true"])
def test_sample_writes_images_as_made_with_progress_warns_and_prints_no_library_notice(finished, tmp_path, ci):
    out = _sample([f"run={finished}", "prompt=a dog", "num_images=3", f"out_dir={tmp_path / 'out'}"],
                  env={**os.environ, "CI": ci})
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert "has none of the run's placeholder tokens (<a1> <a2> <a3>)" in text
    assert "'prompt=\"a dog <a1> <a2> <a3>\"'" in text  # the fix, as typed
    assert "images 3/3" in text and "ETA" in text
    assert "mean_resizing" not in text and "No LoRA keys" not in text and "%|" not in text, text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "00_00.png", "00_01.png", "00_02.png", "grid.png", "prompts.txt"]


def test_an_interrupted_sample_keeps_the_images_it_made(finished, tmp_path):
    out_dir = tmp_path / "out"
    # A shell starts background jobs with SIGINT ignored, and children inherit that: give the child the default, as
    # a terminal's Ctrl-C finds it, whatever launched the tests.
    proc = subprocess.Popen([sys.executable, str(REPO / "sample.py"), f"run={finished}", "num_images=10000",
                             f"out_dir={out_dir}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while len(list(out_dir.glob("*.png"))) < 8:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    subprocess.run(["kill", "-INT", str(proc.pid)], check=True)
    _, err = proc.communicate(timeout=120)
    kept = sorted(p.name for p in out_dir.iterdir())
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    done = int(re.search(r"twinact: stopped: interrupted after (\d+) of \d+0000 images; they are in ", err).group(1))
    assert len(kept) == done + 1 and "prompts.txt" in kept  # whole images only: no temporary file, no grid yet


@pytest.mark.parametrize("damage,message", [
    ("corrupt state", r"twinact_state.safetensors is not a readable safetensors file \(Error while deserializing"),
    ("corrupt lora", r"pytorch_lora_weights.safetensors is not a readable safetensors file"),
    ("foreign token", r"a1.safetensors holds \{'<a1>': \(768,\)\} where \{'<a1>': \(32,\)\} was expected: it was "
                      r"made for another base model or run"),
    ("foreign lora", r"holds unet.+lora_A.weight of shape \[4, 320\], which does not fit that layer \(width 64\)"),
    ("foreign base", r"twinact.json names base model 'sd15' .* made for another base model"),
])
def test_a_damaged_or_foreign_export_is_one_error_before_loading(finished, tmp_path, damage, message):
    import json

    import torch
    from safetensors.torch import load_file, save_file

    from twinact.release.sampling import sample_run

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    export = run / "export"
    if damage == "corrupt state":
        path = export / "twinact_state.safetensors"
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "corrupt lora":
        path = export / "pytorch_lora_weights.safetensors"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "foreign token":
        save_file({"<a1>": torch.zeros(768)}, str(export / "textual_inversion" / "a1.safetensors"))
    elif damage == "foreign lora":
        lora = load_file(str(export / "pytorch_lora_weights.safetensors"))
        key = next(k for k in sorted(lora) if k.endswith("lora_A.weight"))
        save_file({**lora, key: torch.zeros(4, 320)}, str(export / "pytorch_lora_weights.safetensors"))
    else:
        info = json.loads((export / "twinact.json").read_text())
        info["model"] = {**info["model"], "name": "sd15"}
        (export / "twinact.json").write_text(json.dumps(info))
    with pytest.raises(TwinActError, match=message) as err:
        sample_run(str(run), num_images=1)
    assert f"Move {export} away and relaunch the run's training command with run_dir={run} resume=auto" in str(
        err.value)


@pytest.mark.parametrize("override,message", [
    ("eval_suite.steps=0", "eval_suite.steps=0 must be at least 1, e.g. eval_suite.steps=20."),
    ("eval_suite.seeds=[]", "eval_suite.seeds is empty; give at least one, e.g. 'eval_suite.seeds=[0,1]'."),
    ("eval_suite.batch_size=0", "eval_suite.batch_size=0 must be at least 1, e.g. eval_suite.batch_size=4."),
])
def test_evaluate_refuses_bad_suites_before_loading(finished, override, message, caplog):
    from twinact.errors import TwinActError
    from twinact.eval.evaluation import evaluate

    suite = compose([f"run={finished}", override], "evaluate").eval_suite
    with caplog.at_level("WARNING"), pytest.raises(TwinActError) as err:
        evaluate(finished, suite)
    assert str(err.value) == message and "random weights" not in caplog.text


def test_evaluate_shows_a_count_and_time_left_while_rendering(finished, caplog):
    from twinact.eval.evaluation import evaluate

    suite = compose([f"run={finished}", "eval_suite.steps=2", "eval_suite.seeds=[0]"], "evaluate").eval_suite
    with caplog.at_level("INFO", logger="twinact"):
        evaluate(finished, suite)
    assert re.search(r"images 6/6  \d+\.\d\d s each  ETA 0m00s", caplog.text), caplog.text
