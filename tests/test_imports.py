"""The package's import graph has no cycles: every module can be read after the modules it imports, and no two
modules need each other's types either (imports under ``if TYPE_CHECKING`` counted)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, package: str, modules: set[str], type_checking: bool = False) -> set[str]:
    """nppac modules imported anywhere in ``tree`` (in functions too); under ``if TYPE_CHECKING`` only with
    ``type_checking``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is the package itself
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from package import module` runs the package's __init__ and reads its namespace: an edge to both.
            if base in modules:
                found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(type_checking: bool = False) -> dict[str, set[str]]:
    """Module → the nppac modules it imports (a package's ``__init__`` is the package's name); with
    ``type_checking``, also those it imports for its annotations alone."""
    paths = {_module_name(p): p for p in (SRC / "nppac").rglob("*.py")}
    modules = set(paths)
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imports(ast.parse(path.read_text()), package, modules, type_checking) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    assert len(graph) > 50 and "nppac.training.loop" in graph["nppac.training"]
    assert cycles(graph) == []


def test_no_module_needs_the_types_of_a_module_that_imports_it():
    """A type shared by two modules lives in the lower one (or a module of its own), not behind TYPE_CHECKING."""
    assert cycles(import_graph(type_checking=True)) == []


def test_type_checking_imports_count_only_when_asked():
    modules = {"p", "p.a", "p.b"}
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.a import A\nelse:\n"
                     "    from p.b import B\n")
    assert _imports(tree, "p", modules) == {"p.b"}
    assert _imports(tree, "p", modules, type_checking=True) == {"p.a", "p.b"}


def test_from_package_import_module_is_an_edge_to_the_package_too():
    modules = {"p", "p.a", "p.b"}
    assert _imports(ast.parse("from p import b"), "p", modules) == {"p", "p.b"}
    assert _imports(ast.parse("from . import b"), "p", modules) == {"p", "p.b"}
    assert _imports(ast.parse("from p.b import f"), "p", modules) == {"p.b"}


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
