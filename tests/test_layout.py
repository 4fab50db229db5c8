"""The repository's shape: the framework never depends on StickWorld, no import cycles, one meaning per module name,
short modules and thin entry points."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("twinact", "stickworld")
ENTRY_POINTS = ("train.py", "sample.py", "evaluate.py", "compare.py", "build_space.py")


def modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """First-party modules `name` imports anywhere in its file, inside functions included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def graph() -> dict[str, set[str]]:
    everything = {k: v for p in PACKAGES for k, v in modules(p).items()}
    return {name: imports(name, path, set(everything)) for name, path in everything.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_the_framework_never_imports_stickworld():
    offenders = {name: sorted(t for t in targets if t.split(".")[0] == "stickworld")
                 for name, targets in graph().items() if name.startswith("twinact")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_import_cycles_counting_imports_inside_functions():
    assert cycles(graph()) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_name_is_used_twice():
    names = defaultdict(list)
    for package in PACKAGES:
        for dotted in modules(package):
            if dotted not in PACKAGES:
                names[dotted.rpartition(".")[2]].append(dotted)
    assert {k: v for k, v in names.items() if len(v) > 1} == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_short(package):
    long = {str(p.relative_to(REPO)): n for p in modules(package).values()
            if (n := len(p.read_text().splitlines())) > 350}
    assert long == {}


def test_entry_points_are_thin():
    assert {f: n for f in ENTRY_POINTS if (n := len((REPO / f).read_text().splitlines())) > 30} == {}


def layout_bullet(package: str) -> str:
    """docs/architecture.md's bullet for `package` in its Layout section."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text[text.index("## Layout"):]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    start = section.index(f"- `{package}/`")
    end = section.find("\n- `", start + 1)
    return section[start: end if end > 0 else len(section)]


def test_architecture_doc_names_twinact_subpackages_in_order():
    """The twinact bullet names its layers in import order (with what each owns) and the shared top-level modules."""
    bullet = layout_bullet("twinact")
    layers = [n for n in re.findall(r"`([a-z_]+)/`", bullet) if n in TWINACT_LAYERS]
    assert layers == list(TWINACT_LAYERS)
    assert set(TWINACT_SHARED) <= set(re.findall(r"`([a-z_]+)`", bullet))


def test_architecture_doc_names_every_stickworld_module_and_no_other():
    """The stickworld bullet lists its modules exactly."""
    named = {n for n in re.findall(r"`([a-z_]+)`", layout_bullet("stickworld")) if n not in PACKAGES and n[0] != "_"}
    actual = {d.rpartition(".")[2] for d in modules("stickworld") if d != "stickworld"}
    assert named == actual, (sorted(named - actual), sorted(actual - named))


def upward_imports(package: str, layers: tuple[str, ...], edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(importer, imported) pairs where a module in `package` imports a layer after its own. Modules at the package's
    top level (not its `__init__`) sit below every layer."""
    def rank(name: str) -> int | None:
        parts = name.split(".")
        if parts[0] != package or len(parts) < 2:
            return None
        return layers.index(parts[1]) if parts[1] in layers else -1

    return {(name, t) for name, targets in edges.items() if (mine := rank(name)) is not None
            for t in targets if (theirs := rank(t)) is not None and theirs > mine}


def test_upward_imports_are_found():
    edges = {"p.low.a": {"p.high.b", "p.low.c", "p"}, "p.high.b": {"p.low.a", "p.shared"}, "p.shared": {"p.low.c"},
             "p": {"p.high.b"}}
    assert upward_imports("p", ("low", "high"), edges) == {("p.low.a", "p.high.b"), ("p.shared", "p.low.c")}


STICKWORLD_LAYERS = ("world", "networks", "protocol", "gates", "pretraining")


def test_stickworld_subpackages_import_only_those_below_them():
    """Each StickWorld subpackage imports only the ones before it in STICKWORLD_LAYERS (its docstring says which)."""
    assert sorted(upward_imports("stickworld", STICKWORLD_LAYERS, graph())) == []
    assert {p.name for p in (REPO / "stickworld").iterdir() if (p / "__init__.py").is_file()} == set(STICKWORLD_LAYERS)


# twinact's subpackages by role, each importing only those before it (docs/architecture.md); `conf` holds the configs
TWINACT_LAYERS = ("config", "runs", "model", "space", "method", "release", "eval", "train")
TWINACT_SHARED = ("errors", "paths", "plots")  # top-level leaves every layer may import; they import no layer


def test_twinact_subpackages_import_only_those_below_them():
    """Each twinact subpackage imports only the ones before it in TWINACT_LAYERS, counting imports inside functions."""
    assert sorted(upward_imports("twinact", TWINACT_LAYERS, graph())) == []


def test_twinact_holds_its_layers_and_shared_leaves_only():
    root = REPO / "twinact"
    assert {p.name for p in root.iterdir() if (p / "__init__.py").is_file()} == {*TWINACT_LAYERS, "conf"}
    assert {p.stem for p in root.glob("*.py")} == {*TWINACT_SHARED, "__init__"}


@pytest.mark.parametrize("layer", TWINACT_LAYERS)
def test_each_twinact_layer_says_what_it_may_import(layer):
    doc = ast.get_docstring(ast.parse((REPO / "twinact" / layer / "__init__.py").read_text())) or ""
    below = TWINACT_LAYERS[: TWINACT_LAYERS.index(layer)]
    allowed = doc[doc.index("May import:"):] if "May import:" in doc else ""
    assert all(f"`{b}`" in allowed for b in below) or "every other subpackage" in allowed, (layer, doc)


# The one module below the entry points that reads the composed config (it builds the objects everything else
# takes), and the checker that validates it first.
READS_THE_CONFIG = {"twinact/train/training.py", "twinact/config/validate.py"}


def test_only_the_builder_takes_the_composed_config():
    takes = set()
    for path in modules("twinact").values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(a.arg == "cfg" for a in node.args.args + node.args.kwonlyargs):
                    takes.add(str(path.relative_to(REPO)))
    assert takes - READS_THE_CONFIG == set()
