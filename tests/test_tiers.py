"""The test tiers (conftest.TIERS, README.md): `make test` runs the fast tier, every test no tier marker names;
`make test-rest` exactly the rest; the markers are registered and strict; and a test that trains or starts a process
stays out of the fast tier unless it is marked `smoke` (read statically from the test files: nothing here runs the
suite)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import TIERS as TABLE

REPO = Path(__file__).resolve().parent.parent
TIERS = ("e2e", "faults", "stickworld", "slow")
FAST_TIER = "not (e2e or faults or stickworld or slow)"
BUILTIN = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}
MAX_SMOKE = 6
# Calls that train a model or start a process: a test reaching one (itself, through a helper or a fixture of its
# module) is end to end.
RUNS = {"train", "subprocess.run", "subprocess.Popen", "subprocess.check_output", "subprocess.check_call",
        "subprocess.call", "pretrain.main", "train_clip.main", "train_judges.main", "decoder_finetune.main",
        "benchmark.main", "compare_methods.main", "measure_twinact"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _marks(node: ast.AST, aliases: dict[str, set[str]]) -> set[str]:
    """Marker names in a decorator or a `pytestmark` value: pytest.mark.X, pytest.mark.X(...), a list of those, or a
    module-level name bound to one."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return set().union(*(_marks(e, aliases) for e in node.elts)) if node.elts else set()
    name = _dotted(node)
    if name.startswith("pytest.mark."):
        return {name.split(".")[2]}
    return aliases.get(name, set())


def analyse(source: str) -> dict[str, tuple[set[str], bool]]:
    """Each test function of a module -> (its markers, module-wide ones included; whether it reaches a call in
    RUNS)."""
    tree = ast.parse(source)
    aliases: dict[str, set[str]] = {}
    module_marks: set[str] = set()
    functions: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target == "pytestmark":
                module_marks |= _marks(node.value, aliases)
            elif marks := _marks(node.value, aliases):
                aliases[target] = marks
            if isinstance(node.value, ast.Call) and _dotted(node.value.func).startswith("pytest.fixture"):
                # `name = pytest.fixture(...)(function)`: the fixture is that function.
                for arg in node.value.args:
                    if isinstance(arg, ast.Name) and arg.id in functions:
                        functions[target] = functions[arg.id]
        elif isinstance(node, ast.FunctionDef):
            functions[node.name] = node

    def direct(fn: ast.FunctionDef) -> tuple[bool, set[str]]:
        """Whether fn calls a RUNS call itself; the module functions it calls or takes as fixtures. A call inside
        `with pytest.raises(...)` does not count: it is refused before anything runs."""
        runs, uses = False, {a.arg for a in fn.args.args if a.arg in functions}
        refused = {id(n) for w in ast.walk(fn) if isinstance(w, ast.With)
                   and any(_dotted(i.context_expr) == "pytest.raises" for i in w.items)
                   for stmt in w.body for n in ast.walk(stmt)}
        for node in ast.walk(fn):
            if id(node) in refused:
                continue
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                runs |= name in RUNS
                if name in functions:
                    uses.add(name)
            elif isinstance(node, ast.Name) and node.id in functions:
                uses.add(node.id)  # passed along (a factory, a callback)
        return runs, uses - {fn.name}

    edges = {name: direct(fn) for name, fn in functions.items()}
    runs = {name for name, (r, _) in edges.items() if r}
    changed = True
    while changed:
        grown = runs | {name for name, (_, uses) in edges.items() if uses & runs}
        changed, runs = grown != runs, grown

    out = {}
    for name, fn in functions.items():
        if name.startswith("test_") and fn.name == name:
            marks = module_marks.union(*(_marks(d, aliases) for d in fn.decorator_list))
            out[name] = (marks, name in runs)
    return out


def suite() -> dict[str, dict[str, tuple[set[str], bool]]]:
    """Each test module -> each test -> (its markers, those conftest.TIERS gives it included; whether it runs)."""
    out = {}
    for path in sorted((REPO / "tests").glob("test_*.py")):
        tests = analyse(path.read_text())
        for name, (marks, runs) in tests.items():
            tier = TABLE.get(f"{path.name}::{name}", TABLE.get(path.name))
            tests[name] = (marks | ({tier} if tier else set()), runs)
        out[path.stem] = tests
    return out


def registered() -> tuple[set[str], str]:
    """The marker names and addopts of pyproject.toml's pytest section (read as text: tomllib is Python 3.11+)."""
    text = (REPO / "pyproject.toml").read_text()
    section = text[text.index("[tool.pytest.ini_options]"):]
    section = section[: section.find("\n[", 1)]
    markers = re.search(r"^markers = \[(.*?)^\]", section, re.M | re.S).group(1)
    addopts = re.search(r'^addopts = "(.*)"', section, re.M).group(1)
    return set(re.findall(r'^\s*"([a-z0-9_]+):', markers, re.M)), addopts


def make_target(name: str) -> str:
    text = (REPO / "Makefile").read_text()
    match = re.search(rf"^{re.escape(name)}:.*\n((?:\t.*\n)+)", text, re.M)
    assert match, f"Makefile: no {name} target"
    return match.group(1)


def test_markers_are_registered_and_strict():
    names, addopts = registered()
    assert names == {"smoke", *TIERS}
    assert "--strict-markers" in addopts.split()  # a misspelt marker is an error, not a test in the wrong tier
    used = set().union(*(marks for tests in suite().values() for marks, _ in tests.values()))
    assert used - BUILTIN <= names, sorted(used - BUILTIN - names)
    assert used >= {"smoke", *TIERS}  # each tier holds tests


def test_the_tier_table_names_existing_tests_and_registered_tiers():
    names, _ = registered()
    tests = {f"{module}.py::{test}" for module, found in suite().items() for test in found}
    modules = {name.split("::")[0] for name in tests}
    assert sorted(k for k in TABLE if k not in (tests if "::" in k else modules)) == []
    assert set(TABLE.values()) <= names
    # A test's own entry moves it out of its module's tier, so it names another one.
    assert [k for k in TABLE if "::" in k and TABLE[k] == TABLE.get(k.split("::")[0])] == []


def test_make_test_runs_the_fast_tier_and_test_rest_the_rest():
    text = (REPO / "Makefile").read_text()
    assert re.search(r"^FAST_TIER := (.*)$", text, re.M).group(1) == FAST_TIER
    assert '-m pytest -q -m "$(FAST_TIER)"' in make_target("test")
    assert '-m pytest -q -m "not ($(FAST_TIER))"' in make_target("test-rest")  # the complement: each test once
    assert re.search(r"-m pytest -q\s*$", make_target("test-all"), re.M)  # no selection: every tier
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert ci == ["make lint", "make test", "make test-rest"]
    for doc in ("README.md", "docs/architecture.md"):
        assert f'-m "{FAST_TIER}"' in (REPO / doc).read_text(), doc


def test_fast_tier_trains_nothing_and_starts_no_process_unless_marked_smoke():
    unmarked = sorted(f"{module}::{test}" for module, tests in suite().items()
                      for test, (marks, runs) in tests.items()
                      if runs and not marks & {"smoke", *TIERS})
    assert unmarked == [], "mark these with a tier (pytest.mark.e2e, faults, stickworld) or, if few, smoke"


def test_smoke_runs_are_few_and_in_the_fast_tier():
    smoke = {f"{module}::{test}": marks for module, tests in suite().items()
             for test, (marks, _) in tests.items() if "smoke" in marks}
    assert 1 <= len(smoke) <= MAX_SMOKE, sorted(smoke)
    assert {name: sorted(marks & set(TIERS)) for name, marks in smoke.items() if marks & set(TIERS)} == {}


def test_the_reader_finds_runs_through_helpers_fixtures_and_marks():
    source = '''
import pytest
import subprocess
from x import train
slow_one = pytest.mark.e2e
pytestmark = [pytest.mark.skipif(False, reason="")]

def _helper(cfg):
    return train(cfg)

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return _helper(None)

def test_fixture(run_dir):
    assert run_dir

def test_helper():
    _helper(None)

def test_process():
    subprocess.run(["true"])

def test_pure():
    with pytest.raises(ValueError):
        train(None)  # refused before it runs

@slow_one
def test_aliased():
    train(None)

@pytest.mark.smoke
@pytest.mark.parametrize("n", [1])
def test_smoke(n):
    train(n)
'''
    assert analyse(source) == {
        "test_fixture": ({"skipif"}, True), "test_helper": ({"skipif"}, True), "test_process": ({"skipif"}, True),
        "test_pure": ({"skipif"}, False), "test_aliased": ({"skipif", "e2e"}, True),
        "test_smoke": ({"skipif", "smoke", "parametrize"}, True)}


def test_conftest_marks_each_collected_test_with_its_tier(request):
    import conftest

    class Item:
        def __init__(self, path, name):
            self.path, self.originalname, self.marks = Path(path), name, []

        def add_marker(self, mark):
            self.marks.append(mark)

    module, test = next((k.split("::") for k in TABLE if "::" in k))
    other = next(k for k in TABLE if "::" not in k and k != module)
    items = [Item(f"tests/{module}", test), Item(f"tests/{other}", "test_x"), Item("tests/test_nowhere.py", "test_y")]
    conftest.pytest_collection_modifyitems(items)
    assert [i.marks for i in items] == [[TABLE[f"{module}::{test}"]], [TABLE[other]], []]
    # ...and every test this session runs carries its tier (the hook ran before `-m` selected).
    for item in request.session.items:
        tier = TABLE.get(f"{item.path.name}::{item.originalname}", TABLE.get(item.path.name))
        assert tier is None or item.get_closest_marker(tier), item.nodeid
