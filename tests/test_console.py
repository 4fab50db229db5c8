"""What a run prints when its output goes to a file: progress lines with an ETA, a summary, and no known noise."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

from twinact.runs.noise import NOISE


def test_a_run_redirected_to_a_file_prints_progress_and_no_known_noise(tmp_path):
    out = tmp_path / "out.txt"
    cmd = [sys.executable, "train.py", "experiment=stickworld", "method.stage1.steps=2", "method.stage2.steps=2",
           "sample_at_end=true", "logger=none", f"run_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}",
           "data.batch_size=2"]
    # without the variable this process set on itself: the run must set it on its own
    env = {**{k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}, "OMP_NUM_THREADS": "1"}
    with open(out, "w") as f:
        done = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=600)
    text = out.read_text()
    assert done.returncode == 0, text[-2000:]
    assert "step 2/4" in text and "step 4/4" in text and "ETA" in text and "s/step" in text
    assert "Done: 4 steps" in text and "python sample.py run=" in text and "samples_final.png" in text
    for _, start in NOISE:
        assert start not in text, start
    assert "LeafSpec" not in text and "Loading weights" not in text and "weights_only" not in text
    assert "Loading pipeline components" not in text and "%|" not in text  # no tqdm bar redrawn into the file
    assert "LOAD REPORT" not in text  # the similarity loss's vision tower, read from the full StickWorld CLIP


def test_a_plain_multirun_is_a_resumable_sweep_with_one_wandb_run_per_point(tmp_path):
    """The issue's command, as typed: Hydra's default launcher runs every point in one process, yet each point gets
    its own W&B run (offline) holding its own seed, a stable dir under runs/<run_group>/ that `run=` takes unquoted;
    relaunching trains nothing, and compare.py finds both points by their recorded run_group."""
    from twinact.eval.compare import compare
    from twinact.train.fit import wandb_run_id

    cmd = [sys.executable, str(REPO / "train.py"), "-m", "model=tiny", "method.stage1.steps=3", "method.stage2.steps=3",
           "sample_at_end=false", "logger=wandb", "run_group=g", "seed=0,1", f"cache_dir={tmp_path / 'cache'}",
           "callbacks.samples_every_n_steps=0", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for seed in (0, 1):
        run_dir = tmp_path / "runs" / "g" / f"seed-{seed}"
        runs = list((run_dir / "wandb").glob("offline-run-*"))
        assert [r.name.rsplit("-", 1)[1] for r in runs] == [wandb_run_id(run_dir)], runs
        assert f"seed: {seed}\n" in (run_dir / "config.yaml").read_text()

    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and again.stdout.count("is finished; skipping") + \
        again.stderr.count("is finished; skipping") == 2, again.stderr[-2000:]
    assert all(len(list((tmp_path / "runs" / "g" / f"seed-{s}" / "wandb").glob("offline-run-*"))) == 1
               for s in (0, 1))
    table, _ = compare(run_group="g", root=str(tmp_path / "runs"))
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and rows[-1].startswith("| 2 |"), table  # both seeds pooled into one row of n = 2
