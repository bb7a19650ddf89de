"""The import graph of the ``dynrag`` package has no circles.

`import_cycles` reads every module's source (no import is executed): each ``import`` statement
at any depth (inside functions too) is an edge, except those under ``if TYPE_CHECKING:``. A
package counts as its ``__init__``; ``from dynrag.x import y`` is an edge to ``dynrag.x.y`` when
that is a module, else to ``dynrag.x``. The circles are the strongly connected components of
more than one module (or a module that imports itself).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "dynrag"


def module_names(package_dir: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` of every ``.py`` file under ``package_dir``."""
    root = package_dir.parent
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth, but not under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the else branch runs at run time
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` (see the module docstring)."""
    modules = module_names(package_dir)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _resolve(name, is_package, node)
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            graph[name].update(t for t in targets if t in modules)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (each sorted)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative, so deep graphs do not hit the recursion limit
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def import_cycles(package_dir: Path) -> list[list[str]]:
    """The import circles of the package at ``package_dir``: each a sorted list of modules."""
    graph = import_graph(package_dir)
    return sorted(
        component
        for component in strongly_connected(graph)
        if len(component) > 1 or component[0] in graph[component[0]]
    )


def test_the_checker_finds_a_circle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg import c\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\nfrom .a import x\n"
    )
    (pkg / "d.py").write_text("import pkg.c\n")
    assert import_cycles(pkg) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n"
    )
    assert import_cycles(pkg) == []


def test_no_import_circle_in_dynrag() -> None:
    circles = import_cycles(PACKAGE_DIR)
    assert not circles, "\n".join(" <-> ".join(c) for c in circles)


LAYERS = [
    ("dynrag.core",),
    ("dynrag.data",),
    ("dynrag.eval",),
    ("dynrag.training", "dynrag.serve"),
    ("dynrag.model_options",),
    ("dynrag.demo", "dynrag.rerank_command"),
    ("dynrag.cli",),
]
"""dynrag's layers, lowest first: a module imports only from its own layer or those below."""


def _layer(module: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(f"{p}.") for p in prefixes):
            return i
    return None


def test_dynrag_is_layered() -> None:
    """Nothing imports a layer above it (core below data, below training/eval/serve, ...)."""
    graph = import_graph(PACKAGE_DIR)
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if (a := _layer(module)) is not None and (b := _layer(target)) is not None and b > a
    )
    assert not upward, upward


def _training_imports() -> dict[str, set[str]]:
    """The import graph of ``dynrag.training``'s modules, edges into ``dynrag.training`` only."""
    graph = import_graph(PACKAGE_DIR)
    return {
        module: {t for t in targets if t.startswith("dynrag.training")}
        for module, targets in graph.items()
        if module.startswith("dynrag.training.")
    }


def test_dynrag_training_is_layered() -> None:
    """Config and run directory below the stages, the stages below their registry and pipeline."""
    graph = _training_imports()
    top = ("dynrag.training.pipeline", "dynrag.training.cli")
    registry = "dynrag.training.stages.registry"
    stages = "dynrag.training.stages"
    lower = [m for m in graph if not m.startswith(stages) and m not in top]
    bad = {m: sorted(t for t in graph[m] if t.startswith(stages) or t in top) for m in lower}
    assert not {m: t for m, t in bad.items() if t}, "a lower layer imports a stage or the pipeline"
    assert graph["dynrag.training.config"] == set()
    assert graph["dynrag.training.compat"] == set()
    assert graph["dynrag.training.rundir"] == {
        "dynrag.training.compat",
        "dynrag.training.config",
    }
    stage_modules = [m for m in graph if m.startswith(f"{stages}.") and m != registry]
    up = {m: sorted(graph[m] & {stages, registry, *top}) for m in stage_modules}
    assert not {m: t for m, t in up.items() if t}, "a stage imports the registry or the pipeline"
    assert graph[registry] == {"dynrag.training.config", "dynrag.training.stages.base"}
