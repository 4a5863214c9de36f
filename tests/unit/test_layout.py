"""The shape of the code: no import circle in the engine, no private names across modules,
files that fit in a head. Static checks over the source (``ast``): no model, no database."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400

# Files allowed past MAX_LINES, each with its reason. Keep this list short: a long file is split,
# not listed, unless its length is data rather than code.
LONG_FILES: dict[str, str] = {}


def module_name(path: Path) -> str:
    """The dotted name of a source file under ROOT (a package's ``__init__``: the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(*packages: str) -> Iterator[Path]:
    """Every Python file of the given top-level folders."""
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> Iterator[tuple[str, str | None, int]]:
    """Every import of a file, wherever it stands (module level, in functions, under
    ``if TYPE_CHECKING:``): (module, imported name or None, line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this file's package
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield base, alias.name, node.lineno


def import_graph() -> dict[str, set[str]]:
    """Module → the ``matcher`` modules it imports (a package counts as its ``__init__``)."""
    modules = {module_name(p): p for p in sources("matcher")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for module, attribute, _ in imported(path):
            if module.split(".")[0] != "matcher":
                continue
            # `from matcher.embed import base`: the submodule; otherwise the module named.
            target = f"{module}.{attribute}" if f"{module}.{attribute}" in modules else module
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Function-level and TYPE_CHECKING imports are edges too (a circle hidden there is one)."""
    graph = import_graph()
    assert "matcher.store.repo" in graph["matcher.engine"] or any(
        t.startswith("matcher.store") for t in graph["matcher.engine"]
    )
    # The cycle finder finds a circle through a nested import.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_the_engine() -> None:
    """No two modules of ``matcher`` import each other, directly or round a longer circle.

    A package ``__init__`` importing its own submodules is an edge like any other; a submodule
    importing its package back would close a circle and is refused.
    """
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " → ".join(cycle or [])


def test_the_engine_never_imports_the_api() -> None:
    """``api`` adapts HTTP to ``matcher``; the engine knows nothing of it."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources("matcher")
        for module, _, line in imported(path)
        if module == "api" or module.startswith("api.")
    ]
    assert not offenders, offenders


def test_no_private_name_is_imported_across_modules() -> None:
    """``from matcher.x import _name`` reaches into another module's insides: refused
    everywhere (engine, API, benchmarks, tests)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}.{name}"
        for path in sources("matcher", "api", "benchmarks", "tests")
        for module, name, line in imported(path)
        if name is not None
        and module.split(".")[0] in ("matcher", "api", "benchmarks")
        and name.startswith("_")
        and not name.startswith("__")
    ]
    assert not offenders, offenders


def test_files_fit_in_a_head() -> None:
    """No file of the engine or the API runs past MAX_LINES lines, bar the listed data tables."""
    long = {
        str(path.relative_to(ROOT)): n
        for path in sources("matcher", "api")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    unlisted = {name: n for name, n in long.items() if name not in LONG_FILES}
    assert not unlisted, f"files over {MAX_LINES} lines: {unlisted}"
    stale = sorted(set(LONG_FILES) - set(long))
    assert not stale, f"LONG_FILES lists files that are short now: {stale}"
