"""The package's shape: data flows one way (compiler -> runtime -> integrations, cli), without cycles.

Every module under ``corral/`` is parsed with :mod:`ast`; its imports are collected, those inside
functions included, those under ``if TYPE_CHECKING:`` left out (they never run).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.compiler.analysis import strongly_connected_components

ROOT = Path(__file__).resolve().parent.parent / "corral"


@dataclass(frozen=True)
class Import:
    """One imported name: ``module`` (resolved, absolute), ``name`` (``None`` for ``import x``)."""

    module: str
    name: str | None
    top_level: bool
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> list[Import]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[Import] = []

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, top)
            return
        if isinstance(node, ast.Import):
            out.extend(Import(a.name, None, top, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.extend(Import(target, a.name, top, node.lineno) for a in node.names)
        inner = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), True)
    return out


IMPORTS: dict[str, list[Import]] = {m: _imports(m) for m in MODULES}


def _targets(imp: Import) -> set[str]:
    """The corral modules an import loads: the module, and ``from pkg import submodule``'s submodule."""
    out = {imp.module} if imp.module in MODULES else set()
    if imp.name is not None and f"{imp.module}.{imp.name}" in MODULES:
        out.add(f"{imp.module}.{imp.name}")
    return out


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(source_pkg: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for module, imports in IMPORTS.items():
        if not _within(module, source_pkg):
            continue
        for imp in imports:
            for target in _targets(imp) | {imp.module}:
                if any(_within(target, f) for f in forbidden):
                    found.append(f"{module} (line {imp.line}) imports {target}")
    return sorted(set(found))


def test_the_walk_sees_the_package() -> None:
    assert {"corral", "corral.compiler.compiled", "corral.runtime.matcher", "corral.integrations.transformers"} <= set(MODULES)
    # imports inside functions are seen too
    assert any(not imp.top_level for imp in IMPORTS["corral.compiler.compiled"])


def test_compiler_imports_no_runtime_integration_or_cli() -> None:
    assert _violations("corral.compiler", ("corral.runtime", "corral.integrations", "corral.cli")) == []


def test_runtime_imports_no_integration_or_cli() -> None:
    assert _violations("corral.runtime", ("corral.integrations", "corral.cli")) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module."""
    succ = {v: sorted(ws) for v, ws in graph.items()}
    return [sorted(c) for c in strongly_connected_components(sorted(graph), succ) if len(c) > 1]


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_at_module_level() -> None:
    graph = {
        m: {t for imp in imports if imp.top_level for t in _targets(imp) if t != m}
        for m, imports in IMPORTS.items()
    }
    assert _cycles(graph) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _within(m, "corral.integrations")))
def test_integrations_import_no_private_name(module: str) -> None:
    private = [
        f"line {imp.line}: from {imp.module} import {imp.name}"
        for imp in IMPORTS[module]
        if (_within(imp.module, "corral.compiler") or _within(imp.module, "corral.runtime"))
        and (any(part.startswith("_") for part in imp.module.split("."))
             or (imp.name is not None and imp.name.startswith("_")))
    ]
    assert private == []
