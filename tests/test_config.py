"""Every config group option composes, and the entry points report mistakes in one clear line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import CONF, REPO, compose

import twinact  # noqa: F401  (registers the config schemas the raw Hydra compose calls below need)

GROUPS = ["model", "action", "action_space", "action_encoder", "method", "lora", "loss", "data", "trainer", "logger",
          "callbacks", "experiment"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_group_option_composes(group, option):
    cfg = compose([f"{group}={option}"])
    assert cfg.seed == 0
    # Resolving catches broken interpolations that composing alone would not.
    from omegaconf import OmegaConf

    OmegaConf.to_container(cfg, resolve=True)


def test_the_readme_command_composes():
    cfg = compose(["action=three_point_landing", "lora.rank=8"])
    assert cfg.lora.rank == 8 and cfg.action.placeholder_tokens == ["<a1>", "<a2>", "<a3>"]


def _run(*args: str, script: str = "train.py") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_help_lists_the_groups():
    out = _run("--help")
    assert out.returncode == 0
    groups = out.stdout.split("Config groups")[1].split("\n\n")[0]
    for group in GROUPS:  # one line per group (data and trainer share one), its options after it
        assert re.search(rf"^  (\w+, )?{group}\b", groups, re.M), group


def test_unknown_key_and_unknown_action_are_one_clear_error():
    out = _run("lora.rnk=8")
    assert out.returncode != 0 and "lora.rnk" in out.stderr and "Traceback" not in out.stderr
    out = _run("action=backflip_nope")
    assert out.returncode != 0 and "backflip_nope" in out.stderr and "three_point_landing" in out.stderr
    assert "Traceback" not in out.stderr


def test_user_error_prints_one_line_and_exit_code_2(tmp_path):
    out = _run(f"action.image_dir={tmp_path / 'missing'}", f"run_dir={tmp_path / 'run'}", "logger=none")
    assert out.returncode == 2, out.stderr[-2000:]
    assert "twinact: error: Image folder" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


def test_sample_refuses_a_folder_that_is_not_a_run(tmp_path):
    out = _run(f"run={tmp_path}", script="sample.py")
    assert out.returncode == 2 and "is not a finished twinact run" in out.stderr


def test_slurm_launcher_composes_with_one_task_per_device():
    """SLURM starts trainer.devices tasks per node on trainer.num_nodes nodes, so Lightning can join them."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        overrides = ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]
        cfg = hydra_compose("train", overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 2)


def test_slurm_script_honours_the_site_file(tmp_path, monkeypatch):
    """The sbatch script hydra-submitit writes (stub sbatch / srun on PATH) takes every key of conf/local/slurm.yaml
    over the launcher's defaults, names the job after the run group and asks for the preemption signal."""
    import shutil

    import submitit
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
    from omegaconf import OmegaConf

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "local" / "slurm.yaml").write_text("partition: big\naccount: lab\ntimeout_min: 720\nmem_gb: 64\n"
                                               "cpus_per_task: 6\nconstraint: a100\n")
    (tmp_path / "bin").mkdir()
    for tool, body in (("sbatch", 'echo "Submitted batch job 42"'), ("srun", "exit 0")):
        (tmp_path / "bin" / tool).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / "bin" / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = hydra_compose("train", ["hydra/launcher=slurm", "run_group=cmp", f"hydra.sweep.dir={tmp_path / 'sw'}"],
                            return_hydra_config=True)
    executors = []
    monkeypatch.setattr(submitit.AutoExecutor, "map_array", lambda self, fn, *args: executors.append(self) or [])
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    launcher = SlurmLauncher(**params)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    launcher.launch([["seed=0"]], initial_job_idx=0)
    script = executors[0]._executor._make_submission_file_text("python -m twinact", "uid")
    for line in ("--partition=big", "--account=lab", "--time=720", "--mem=64GB", "--cpus-per-task=6",
                 "--constraint=a100", "--job-name=cmp", "--signal=USR2@120"):
        assert f"#SBATCH {line}\n" in script, line


SCHEMA_GROUPS = ["model", "action", "action_space", "method", "lora", "loss", "data", "callbacks"]


@pytest.mark.parametrize("group,option", [(g, o) for g in SCHEMA_GROUPS for o in _options(g)])
def test_option_files_state_only_what_differs(group, option):
    """A typed group's defaults live in its schema: an option file sets a key only to change what it starts from (the
    schema, or the option it extends), so a default is never written twice."""
    from omegaconf import OmegaConf

    from twinact.config.compose import flatten

    raw = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{option}.yaml"))
    parent = next(d for d in raw.pop("defaults", ["schema"]) if d != "_self_")
    base = [] if group == "model" else ["model=tiny"]  # no model_setup: it sets keys of other groups

    def values(name):
        composed = compose(base + [f"{group}={name}"])[group]
        return flatten(OmegaConf.to_container(composed, resolve=True), keep_lists=True)

    mine, theirs = values(option), values(parent)
    repeated = [k for k in flatten(raw, keep_lists=True) if k != "name" and mine[k] == theirs.get(k)]
    assert repeated == [], f"{group}/{option}.yaml repeats {parent}'s {repeated}"


def test_the_trainer_group_builds_a_lightning_trainer():
    """`trainer` names pl.Trainer by `_target_`: its keys reach the Trainer as they are, twinact's own keys do not."""
    from twinact.train.training import trainer_plan

    plan = trainer_plan(compose(["trainer.gradient_clip_val=0.5", "trainer.log_every_n_steps=3",
                                 "trainer.accelerator=cpu", "trainer.stop_after_steps=7"]).trainer)
    trainer = plan.make(logger=False, enable_checkpointing=False)
    assert trainer.gradient_clip_val == 0.5 and trainer.log_every_n_steps == 3 and plan.stop_after_steps == 7
