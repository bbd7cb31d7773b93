"""The package's import graph has no cycle, and only ``tallyclerk.cli`` imports the CLI.

The graph is computed from the source (``ast`` over ``python/tallyclerk``), not from what a run
happens to import. An edge ``a -> b`` is any ``import``/``from ... import`` in module ``a``
naming module ``b`` of the package:

* module-level and function-level imports both count: a function-level import only postpones
  a cycle to the first call, it does not remove it;
* imports under ``if TYPE_CHECKING:`` do not count: they never run (they exist for the type
  checker, which handles cycles);
* importing ``a.b.c`` implicitly runs the packages ``a`` and ``a.b``; those implicit edges to
  parent packages are not counted (else every module of a package would "cycle" through its
  ``__init__``); what a package's ``__init__`` itself imports is counted.

``from tallyclerk.x import name`` is an edge to ``tallyclerk.x.name`` when that is a module,
else to ``tallyclerk.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "tallyclerk"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def target(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                t = target(alias.name)
                if t is not None:
                    found.add(t)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                t = target(f"{mod}.{alias.name}") if f"{mod}.{alias.name}" in modules \
                    else target(mod)
                if t is not None:
                    found.add(t)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_graph_is_computed_from_real_imports() -> None:
    graph = import_graph()
    assert "tallyclerk.api" in graph and "tallyclerk.session" in graph["tallyclerk.api"]
    assert "tallyclerk.api" in graph["tallyclerk.cli.load"]
    assert "tallyclerk.session" in graph["tallyclerk.workers"]  # a function-level import
    # the detector finds a cycle when there is one
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_the_package() -> None:
    assert find_cycles(import_graph()) == []


def test_only_the_cli_imports_the_cli() -> None:
    offenders = sorted(
        f"{name} imports {dep}"
        for name, deps in import_graph().items()
        if not (name == "tallyclerk.cli" or name.startswith("tallyclerk.cli."))
        for dep in deps
        if dep == "tallyclerk.cli" or dep.startswith("tallyclerk.cli.")
    )
    assert offenders == []
