"""The package's shape: imports only run downward, modules stay short.

Reads the source (nothing is imported), so it runs once, in the TensorFlow
run of the suite.
"""

import ast
import pathlib

import pytest

pytestmark = pytest.mark.backend("tensorflow")

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_clip"
MAX_LINES = 400


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _nodes(tree, call_time):
    """The nodes of a module; with `call_time` False, none inside a function
    or method body (what runs when the module is imported)."""
    if call_time:
        yield from ast.walk(tree)
        return
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))


def _imports(path, name, call_time=True):
    """Every keras_clip module `path` imports, at any depth (function-level
    imports included unless `call_time` is False), with the packages each
    import runs on the way."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in _nodes(ast.parse(path.read_text(), str(path)), call_time):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target.split(".")[0] != "keras_clip":
                continue
            # Importing a.b.c runs a/__init__ and a/b/__init__ first, except
            # the packages this module lives in (already being imported).
            parts = target.split(".")
            found.update(
                prefix
                for i in range(2, len(parts) + 1)
                if not name.startswith((prefix := ".".join(parts[:i])) + ".")
            )
    return found


def _graph(call_time=True):
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: sorted(_imports(path, name, call_time) & set(modules) - {name})
        for name, path in modules.items()
    }


def _cycle(graph):
    """One import circle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in graph[node]:
            if state.get(child) == "open":
                return stack[stack.index(child) :] + [child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle():
    graph = _graph(call_time=False)
    assert len(graph) > 50
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_planted_circle():
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": []}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": ["b"], "b": []}) is None


def test_relative_and_function_level_imports_are_seen(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from keras_clip.objectives import functional\n")
    assert "keras_clip.objectives.functional" in _imports(module, "keras_clip.x")
    assert not _imports(module, "keras_clip.x", call_time=False)


# The floors, from the bottom: a module imports only modules on its own
# floor or below (docs/architecture.md).
FLOORS = (
    ("keras_clip.utils", "keras_clip.keras_workarounds"),
    ("keras_clip.layers", "keras_clip.objectives", "keras_clip.metrics"),
    ("keras_clip.encoders",),
    ("keras_clip.models",),
    (
        "keras_clip.tokenizers",
        "keras_clip.data",
        "keras_clip.datasets",
        "keras_clip.evaluation",
        "keras_clip.pretrained",
        "keras_clip.export",
    ),
    ("keras_clip.training",),
    ("keras_clip.cli",),
)


def _floor(module):
    for level, packages in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return level
    return None


# Entry points that call a floor above at call time (never at import):
# `CLIP.from_pretrained` / `save_pretrained` reach the checkpoint readers,
# which build CLIP, as keras-hub's `Backbone.from_preset` reaches its loaders.
CALL_TIME_ENTRY_POINTS = {
    ("keras_clip.models.clip", "keras_clip.pretrained"),
    ("keras_clip.models.clip", "keras_clip.pretrained.loading"),
}


def _upward(graph, allowed=frozenset()):
    return [
        f"{name} imports {child}"
        for name, children in graph.items()
        if name != "keras_clip"
        for child in children
        if child != "keras_clip" and _floor(child) > _floor(name) and (name, child) not in allowed
    ]


def test_every_module_has_a_floor_and_imports_only_downward():
    graph = _graph()
    unplaced = [name for name in graph if name != "keras_clip" and _floor(name) is None]
    assert not unplaced
    upward = _upward(graph, CALL_TIME_ENTRY_POINTS)
    assert not upward, "\n".join(upward)
    # At import, no exception at all.
    assert not _upward(_graph(call_time=False))


def test_the_floor_check_sees_an_upward_import():
    assert _floor("keras_clip.models.clip") < _floor("keras_clip.training.recipes")
    assert _floor("keras_clip.somewhere_new") is None


def test_at_most_three_modules_directly_under_the_package():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= 3, loose


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long
