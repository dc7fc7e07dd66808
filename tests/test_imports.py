"""The import graph of the engine (medallion/) and the example (pagila_example/): no cycle, and
the engine never imports the example (docs/architecture.md). Read from the real source files with
ast (every import statement counts, inside functions and `if TYPE_CHECKING:` too: a lazy import
hides a cycle, it does not break it) and checked by importing every module."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("medallion", "pagila_example")


def _modules() -> dict[str, Path]:
    """Every module of both packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(tree: ast.AST, name: str, is_package: bool, modules: dict[str, Path]) -> set[str]:
    """The modules of both packages that a module's code imports (wherever the import statement is)."""
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names)
    return {t for t in targets if t in modules}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", modules)
            for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a module importing itself
    (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))
    return found


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 60 and "medallion.access.roles" in graph and "pagila_example.demo" in graph
    assert "medallion.db" in graph["medallion.access.roles"] or "medallion.sqlfiles" in graph["medallion.access.roles"]
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(
        " -> ".join(c) + ": " + ", ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c) for c in found)


def test_the_cycle_finder_finds_one() -> None:
    """The check above could pass by finding nothing: a known circle must be found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}, "b": set()}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_engine_never_imports_the_example() -> None:
    graph = import_graph()
    engine = {name: targets for name, targets in graph.items() if name.split(".")[0] == "medallion"}
    offending = {name: sorted(t for t in targets if t.startswith("pagila_example")) for name, targets in engine.items()}
    assert not {name: t for name, t in offending.items() if t}
    assert any(t.startswith("medallion") for t in graph["pagila_example.api"])  # the example does use the engine
    # At run time too: every engine module imported in a fresh interpreter loads nothing of the example.
    script = ("import importlib, json, sys\n"
              f"names = {sorted(engine)!r}\n"
              "for name in names: importlib.import_module(name)\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'pagila_example')))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_every_example_module_imports() -> None:
    for name in sorted(name for name in _modules() if name.split(".")[0] == "pagila_example"):
        importlib.import_module(name)
