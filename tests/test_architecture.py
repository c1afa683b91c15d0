"""The package's shape: one-way imports, no cycles, no long modules, the hub kept apart.

The import graph is built with :mod:`ast` from the source files, so it sees every import a module
can run: module-level ones, ones inside functions and methods, relative ones (resolved against the
module's package) and ``importlib.import_module("literal", ...)`` calls (the lazy exports of
``mlhub_widgets/__init__.py``). Imports under ``if TYPE_CHECKING:`` count too, for cycles and
layers alike: a type from another module is a dependency on it, and a cycle of annotations is a
knot a reader has to untie all the same. An edge goes to the module named, not to its parent
packages: importing ``mlhub_widgets.download.job`` runs ``mlhub_widgets/download/__init__.py``
as well, but that is the package's own business and would make every package "import" its
children.

Run this file as a script to print the graph: ``python tests/test_architecture.py``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = "mlhub_widgets"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE
MAX_LINES = 800
#: Modules allowed above MAX_LINES, each with the reason.
LONG_MODULES: dict[str, str] = {}

# The layers, lowest first: a module may import modules of its own layer or of lower ones, never
# of a higher one. Names are module prefixes ("mlhub_widgets.download" covers the package and
# everything in it); the longest prefix wins. docs/architecture.md explains each layer.
LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["_version", "types", "units", "net.redact", "exceptions"]),
    ("net", ["net"]),
    ("config", ["config"]),
    ("filters", ["filters"]),
    ("mlhub API", ["mlhub.client"]),
    ("sources", ["sources"]),
    ("discovery", ["discovery", "local"]),  # local: reading downloaded datasets
    ("download", ["download"]),
    ("objects", ["mlhub", "client"]),  # Dataset/Collection/MLModel, the radiant_mlhub facade
    ("front ends", ["cli", "widgets", "demo"]),
    ("package", [""]),
]
# The bundled server stands apart: it imports nothing from the client side, and only the demo
# launcher (and the test suite) starts it.
HUB = f"{PACKAGE}.hub"
HUB_IMPORTERS = {f"{PACKAGE}.demo"}
#: What the hub may use of the package outside it: the version string (its OpenAPI document
#: and User-Agent name the release), which holds no client code.
HUB_MAY_IMPORT = {f"{PACKAGE}._version"}


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line``; ``runtime`` is False under TYPE_CHECKING."""

    source: str
    target: str
    line: int
    runtime: bool


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: set[Edge] = field(default_factory=set)

    def adjacency(self) -> dict[str, set[str]]:
        adj: dict[str, set[str]] = {m: set() for m in self.modules}
        for e in self.edges:
            if e.source != e.target:
                adj[e.source].add(e.target)
        return adj


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, runtime: bool = True) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under ``node``, with whether it runs outside TYPE_CHECKING blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.body:
                yield sub, False
                yield from _walk(sub, False)
            for sub in child.orelse:
                yield sub, runtime
                yield from _walk(sub, runtime)
            continue
        yield child, runtime
        yield from _walk(child, runtime)


def _resolve(current: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def build_graph() -> Graph:
    graph = Graph()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        graph.modules[module_name(path)] = path

    def target_of(name: str) -> str | None:
        """The longest prefix of ``name`` that is one of our modules (None: not ours)."""
        parts = name.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in graph.modules:
                return candidate
            parts.pop()
        return None

    for mod, path in graph.modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, runtime in _walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_package, node.level, node.module)
                # ``from pkg import sub`` imports the submodule when there is one
                names = [f"{base}.{alias.name}" for alias in node.names]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute | ast.Name)
                and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
                == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                literal = node.args[0].value
                level = len(literal) - len(literal.lstrip("."))
                names = [_resolve(mod, is_package, level, literal.lstrip(".") or None)]
            for name in names:
                target = target_of(name)
                if target is not None:
                    graph.edges.add(Edge(mod, target, node.lineno, runtime))  # type: ignore[attr-defined]
    return graph


def find_cycles(adj: dict[str, set[str]]) -> list[list[str]]:
    """One import cycle ``[a, b, ..., a]`` per group of modules that import each other."""
    cycles = []
    for group in strongly_connected(adj):
        # a shortest way back to the group's first module, through the group only
        start = min(group)
        paths = {nxt: [start, nxt] for nxt in sorted(adj[start] & group)}
        queue = list(paths)
        while start not in paths:
            node = queue.pop(0)
            for nxt in sorted(adj[node] & group):
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
        cycles.append(paths[start])
    return cycles


def strongly_connected(adj: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the groups of more than one module that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(adj[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(adj):
        if node not in index:
            visit(node)
    return sorted(groups, key=min)


def layer_of(module: str) -> tuple[int, str]:
    rel = module.removeprefix(PACKAGE).removeprefix(".")
    best: tuple[int, int, str] = (-1, -1, "")
    for index, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (prefix == "" or rel == prefix or rel.startswith(prefix + ".")) and len(
                prefix
            ) > best[0]:
                best = (len(prefix), index, name)
    return best[1], best[2]


def _where(graph: Graph, edge: Edge) -> str:
    path = graph.modules[edge.source].relative_to(PACKAGE_DIR.parent)
    return f"{path}:{edge.line}: {edge.source} imports {edge.target}"


GRAPH = build_graph()


def test_the_graph_sees_function_level_and_lazy_imports() -> None:
    # guards the checker itself: an empty or module-level-only graph would pass everything
    assert len(GRAPH.modules) > 40
    lazy = {e.target for e in GRAPH.edges if e.source == PACKAGE}
    assert f"{PACKAGE}.discovery" in lazy
    assert any(t.startswith(f"{PACKAGE}.widgets") for t in lazy)
    assert any(e.source == f"{PACKAGE}.demo" and e.target.startswith(HUB) for e in GRAPH.edges)


def test_no_import_cycles() -> None:
    cycles = find_cycles(GRAPH.adjacency())
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_is_over_800_lines() -> None:
    long = {
        rel: n
        for path in GRAPH.modules.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and (rel := path.relative_to(PACKAGE_DIR.parent).as_posix()) not in LONG_MODULES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_the_hub_and_the_client_stay_apart() -> None:
    wrong = [
        _where(GRAPH, e)
        for e in GRAPH.edges
        if (
            e.source.startswith(HUB)
            and not e.target.startswith(HUB)
            and e.target not in HUB_MAY_IMPORT
        )
        or (
            e.target.startswith(HUB)
            and not e.source.startswith(HUB)
            and e.source not in HUB_IMPORTERS
        )
    ]
    assert wrong == [], "\n".join(wrong)


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for e in sorted(GRAPH.edges, key=lambda e: (e.source, e.line)):
        if e.source.startswith(HUB) or e.target.startswith(HUB) or e.source == PACKAGE:
            continue  # the hub has its own test; the package root re-exports everything
        (src_rank, src_layer), (dst_rank, dst_layer) = layer_of(e.source), layer_of(e.target)
        if dst_rank > src_rank:
            wrong.append(f"{_where(GRAPH, e)} ({src_layer} -> {dst_layer})")
    assert wrong == [], "imports that go up a layer:\n" + "\n".join(wrong)


@pytest.mark.parametrize("package", [PACKAGE, f"{PACKAGE}.download", f"{PACKAGE}.widgets"])
def test_lazy_exports_resolve_and_are_listed(package: str) -> None:
    """Names loaded on first use are real, and dir() (tab completion) lists them."""
    module = importlib.import_module(package)
    listed = set(dir(module))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in listed, name
    assert not hasattr(module, "no_such_name")


def test_only_the_cli_imports_the_cli() -> None:
    cli = f"{PACKAGE}.cli"
    wrong = [
        _where(GRAPH, e)
        for e in GRAPH.edges
        if (e.target == cli or e.target.startswith(cli + "."))
        and not (e.source == cli or e.source.startswith(cli + "."))
    ]
    assert wrong == [], "\n".join(wrong)


if __name__ == "__main__":
    for mod in sorted(GRAPH.modules):
        targets = sorted(
            {e.target + ("" if e.runtime else " (typing)") for e in GRAPH.edges if e.source == mod}
        )
        print(f"{mod} [{layer_of(mod)[1]}]")
        for t in targets:
            print(f"    -> {t}")
    for cycle in find_cycles(GRAPH.adjacency()):
        print("cycle:", " -> ".join(cycle), file=sys.stderr)
