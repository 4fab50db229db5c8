"""Every bad override is one `twinact: error:` line naming the key and a fix that works as typed; exit 2, nothing
written (checked before Hydra runs, so also for values Hydra itself would refuse or silently ignore)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from twinact.errors import TwinActError
from twinact.runs.overrides import check_overrides

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent

ROWS = [  # (override, the error, exactly)
    ("lora.rank=abc", "lora.rank=abc is not an integer (e.g. lora.rank=8)."),
    ("lora.rank=2.5", "lora.rank=2.5 is not an integer (e.g. lora.rank=8)."),
    ("method.stage1.lr=abc", "method.stage1.lr=abc is not a number (e.g. method.stage1.lr=0.0002)."),
    ("data.batch_size=x", "data.batch_size=x is not an integer (e.g. data.batch_size=4)."),
    ("method.lora=maybe", "method.lora=maybe is not true or false (e.g. method.lora=true)."),
    ("lora.rnk=8", "lora.rnk is not a config key (did you mean lora.rank?)."),
    ("+lora.rnk=8", "lora.rnk is not a config key (did you mean lora.rank?)."),
    ("+method.stage1.step=5", "method.stage1.step is not a config key (did you mean method.stage1.steps?)."),
    ("model=sd16", "model=sd16 is not an option of the model group; choose one of sd15, sd15_random, sdxl, "
                   "sdxl_random, stickworld, tiny, tiny_xl (e.g. model=sd15)."),
    ("lora.rank=4,8", "lora.rank=4,8 lists several values: add -m to sweep them, or write a list as key=[a,b]."),
]


@pytest.mark.parametrize("override,message", ROWS)
def test_each_bad_override_is_one_named_error(override, message):
    with pytest.raises(TwinActError) as err:
        check_overrides([override])
    assert str(err.value) == message


@pytest.mark.parametrize("override,message", [r for r in ROWS if "e.g. " in r[1] or "did you mean" in r[1]])
def test_the_suggested_fix_works_as_typed(override, message):
    fix = re.search(r"(?:e\.g\. |did you mean )([^ )?]+)", message).group(1)
    check_overrides([fix if "=" in fix else f"{fix}={override.partition('=')[2]}"])


def test_sweeps_are_checked_value_by_value():
    check_overrides(["-m", "lora.rank=4,8", "seed=0,1"])
    with pytest.raises(TwinActError, match=r"^lora.rank=abc is not an integer"):
        check_overrides(["-m", "lora.rank=4,abc", "seed=0,1"])


def test_good_command_lines_pass():
    check_overrides(["action=three_point_landing", "lora.rank=8"])
    check_overrides(["model=sd15", "trainer=gpu", "hydra/launcher=basic", "--cfg", "job"])


@pytest.mark.parametrize("override", ["lora.rank=abc", "method.stage1.lr=-1e-4"])
def test_train_py_prints_one_line_exits_2_and_writes_nothing(tmp_path, override):
    """One row Hydra would refuse, one twinact refuses after composing: both one line, exit 2, no run dir."""
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), override, f"run_dir={tmp_path / 'run'}",
                           f"cache_dir={tmp_path / 'cache'}", "logger=none"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("twinact: error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert override.partition("=")[0] in errors[0]
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_help_pages_describe_the_tool_with_examples_and_only_its_own_groups():
    train_help = subprocess.run([sys.executable, str(REPO / "train.py"), "--help"], capture_output=True, text=True,
                                timeout=300).stdout
    assert train_help.startswith("train.py: ") and "Examples:" in train_help
    assert "python train.py action=three_point_landing lora.rank=8" in train_help
    assert "backflip, cartwheel" in train_help  # the learnable StickWorld actions, read from the shipped folders
    assert "schema" not in train_help and len(train_help.splitlines()) < 40
    sample_help = subprocess.run([sys.executable, str(REPO / "sample.py"), "--help"], capture_output=True,
                                 text=True, timeout=300).stdout
    assert sample_help.startswith("sample.py: ") and "action_encoder" not in sample_help


def test_an_unknown_stickworld_action_lists_the_shipped_ones():
    from twinact.method.data import load_exemplars

    with pytest.raises(TwinActError, match=r"No shipped exemplars for 'nope'.*backflip, cartwheel.*action.name="):
        load_exemplars("pkg://stickworld/exemplars/nope", 64)


def test_a_value_hydra_reads_as_syntax_names_the_quoting_that_works(tmp_path):
    """`prompt="a <a1>"` typed in bash reaches Hydra without its quotes; the error names what to type instead."""
    python = shlex.quote(sys.executable)
    typed = f'{python} sample.py run={tmp_path} prompt="a polar bear <a1> <a2> <a3>"'
    proc = subprocess.run(["bash", "-c", typed], cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == ("twinact: error: prompt=a polar bear <a1> <a2> <a3>: Hydra reads '<' in it as syntax; quote "
                        "the value for Hydra inside the shell's quotes: 'prompt=\"a polar bear <a1> <a2> <a3>\"'.")
    fix = lines[0].rsplit(": ", 1)[1].removesuffix(".")
    echo = f"{python} -c 'import sys; print(sys.argv[1])' {fix}"
    retyped = subprocess.run(["bash", "-c", echo], capture_output=True, text=True, timeout=60).stdout.strip()
    check_overrides([f"run={tmp_path}", retyped], "sample")
    assert OverridesParser.create().parse_override(retyped).value() == "a polar bear <a1> <a2> <a3>"
