"""Which way imports point in the core package (docs/architecture.md), function-level imports
included: it imports nothing from tools/ (the Lambda layer ships no tool), and no two of its
modules import each other, directly or round a circle."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "layers" / "core" / "cognito_backup"


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module `name` imports, wherever the import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out - {name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_core_imports_nothing_from_the_tools() -> None:
    offenders = {
        m: sorted(i for i in deps if i.split(".")[0] == "cognito_local") for m, deps in graph().items()
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_module_finder_sees_function_level_imports(tmp_path: Path) -> None:
    # The check above is only as good as this: an import inside a function counts.
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from cognito_local.demo import run_demo\n", encoding="utf-8")
    assert "cognito_local.demo" in imports("cognito_backup.probe", probe, {})


def test_every_error_class_lives_in_errors_py() -> None:
    # Private control-flow signals (a leading underscore) may stay where they are raised.
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if any(b.endswith(("Error", "Exception")) for b in bases) and name != "cognito_backup.errors":
                    found.append(f"{name}.{node.name}")
    assert found == []


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, set()) & edges.keys():
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_two_core_modules_import_each_other_round_any_circle() -> None:
    assert circles(graph()) == []


def test_the_circle_finder_finds_a_circle_through_a_function_level_import() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
