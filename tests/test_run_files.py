"""Each file of a run dir and an export is named once (`twinact/runs/files.py`): a second spelling could drift apart
from the first, and a reader would then look for a file that the writer no longer writes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from twinact.runs import files
from twinact.runs.files import RunFiles

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "twinact").rglob("*.py")) + sorted(ROOT.glob("*.py"))
FILE_NAMES = {RunFiles(Path("r")).config.name, RunFiles(Path("r")).meta.name, RunFiles(Path("r")).action_space.name,
              RunFiles(Path("r")).last_checkpoint.name, RunFiles(Path("r")).final_grid.name,
              RunFiles(Path("r")).metrics.name, files.EXPORT_INFO, files.EXPORT_STATE, files.LORA_WEIGHTS,
              files.FAILED_MARK}
FOLDERS = [p.name for p in (RunFiles(Path("r")).export, RunFiles(Path("r")).eval, RunFiles(Path("r")).samples,
                            RunFiles(Path("r")).checkpoints, RunFiles(Path("r")).eval_images)]
# `<path> / "export"`: a folder of a run joined by hand (the words alone are also config keys and W&B keys)
JOINED_FOLDER = re.compile(r'/\s*"(' + "|".join(FOLDERS) + r')"')


def _spellings(path: Path) -> list[str]:
    text = path.read_text()
    found = [f"{n.lineno}: {n.value!r}" for n in ast.walk(ast.parse(text))
             if isinstance(n, ast.Constant) and n.value in FILE_NAMES]
    return found + [f"{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}" for m in JOINED_FOLDER.finditer(text)]


# (file, name): a name a run shares with something else, defined once there
OTHER_MEANINGS = {("twinact/space/action_space.py", "'meta.json'")}  # ENTRY_META: an action-space cache entry's record


def test_run_files_are_named_only_in_files_py():
    spelled = {}
    for path in SOURCES:
        rel = str(path.relative_to(ROOT))
        found = [s for s in _spellings(path) if (rel, s.split(": ", 1)[1]) not in OTHER_MEANINGS]
        if path.name != "files.py" and found:
            spelled[rel] = found
    assert not spelled, f"name these through twinact.runs.files instead: {spelled}"


def test_the_check_sees_a_second_spelling(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('from pathlib import Path\nrun = Path("r")\nA = run / "export" / "twinact.json"\n')
    assert len(_spellings(planted)) == 2
