"""Experiment presets: every sweep preset composes with the values its header command sweeps, and (slow tier) every
preset trains one step on the tiny model and exports."""

from __future__ import annotations

import re

import pytest
from conftest import CONF, compose
from omegaconf import OmegaConf

from twinact.train.training import train

PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
SWEEPS = [name for name in PRESETS if name not in ("demo", "stickworld", "sweep")]  # single runs; the sweeps' base
EXTRA = {"ablate_encoder": ["action_encoder=clip_vision"]}  # pose needs photos of people; clip_vision is the fast one


def header_command(name: str) -> list[str]:
    """The `python train.py -m experiment=<name> ...` command in the preset's leading comment, as arguments."""
    header = []
    for line in (CONF / "experiment" / f"{name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    match = re.search(rf"python train\.py -m (experiment={name}\b[^\[]*)", " ".join(header))
    assert match, f"{name}.yaml: no `python train.py -m experiment={name} ...` in its header comment"
    return match.group(1).split()


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_preset_groups_resumes_and_composes_with_its_swept_values(name):
    args = header_command(name)
    sweeps = [arg.split("=", 1) for arg in args[1:]]
    assert sweeps and all("," in values for _, values in sweeps), f"{name}: the header command sweeps nothing"
    for key, values in sweeps:
        for value in values.split(","):
            cfg = compose([f"experiment={name}", f"{key}={value}"])
            resolved = OmegaConf.to_container(cfg, resolve=True)  # catches broken interpolations
            assert resolved["run_group"] == name and resolved["run_dir"] is None and resolved["resume"] == "auto"
            chosen = OmegaConf.select(cfg, key)
            if isinstance(chosen, float):  # typed by the schema: "0" composes to 0.0
                assert chosen == float(value)
            else:
                assert str(chosen.get("name", chosen.get("mode")) if OmegaConf.is_config(chosen) else chosen) == value


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_trains_one_step_and_exports(tiny_cfg, tmp_path, name):
    run_dir = tmp_path / name
    # Presets set run_dir (null for sweeps), so the test's own run_dir comes after the experiment.
    cfg = tiny_cfg(f"experiment={name}", f"run_dir={run_dir}", *EXTRA.get(name, []), stage1=1, stage2=1)
    result = train(cfg)
    assert result.run_dir == run_dir and result.module is not None
    assert result.trainer.global_step == 2
    assert (run_dir / "export" / "twinact.json").is_file()
    assert (run_dir / "export" / "textual_inversion" / "a1.safetensors").is_file()
