"""The layering stays true: no two top-level parts of ``src/mlservice`` import each other through
any chain, and ``ml/`` imports no web or database code.

Read from the source with ``ast``, so an import inside a function (a lazy import, which only
hides a cycle from the interpreter) counts like one at the top of a file. A top-level part is a
folder (``auth``, ``events``, …) or a module (``app.py``, ``origin.py``) directly under
``src/mlservice``. Two kinds of file are set aside, as their place is above every domain:
- ``router.py``: routers sit on top and may use any domain (that is what endpoints are for);
- ``db/migrations/``: migrations (and their ``metadata``) know every table of every domain.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mlservice"
WEB_AND_DATABASE = ("fastapi", "starlette", "sqlalchemy")


@dataclass(frozen=True)
class Import:
    module: str  # the absolute name of what is imported
    line: str  # "path:lineno: source"


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """The dotted name of a source file under ``root`` (the package folder), and whether it is
    a package's ``__init__``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import in a file, at any depth, resolved to absolute module names."""
    module, is_package = module_name(path, root)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # "from package import name" may import the submodule package.name
            names = [source] + [f"{source}.{alias.name}" for alias in node.names if alias.name != "*"]
        else:
            continue
        where = f"{path.relative_to(root.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}"
        for name in names:
            yield Import(name, where)


def part_of(module: str, package: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == package else None


def set_aside(path: Path, root: Path) -> bool:
    relative = path.relative_to(root).parts
    return path.name == "router.py" or relative[:2] == ("db", "migrations")


def part_edges(root: Path) -> dict[str, dict[str, list[str]]]:
    """part -> imported part -> the import lines that make the edge."""
    package = root.name
    edges: dict[str, dict[str, list[str]]] = {}
    for path in sorted(root.rglob("*.py")):
        if set_aside(path, root):
            continue
        source = path.relative_to(root).parts[0].removesuffix(".py")
        if source == "__init__":
            continue
        for found in imports_of(path, root):
            target = part_of(found.module, package)
            if target is None or target == source or not _exists(root, target):
                continue
            lines = edges.setdefault(source, {}).setdefault(target, [])
            if found.line not in lines:
                lines.append(found.line)
    return edges


def _exists(root: Path, part: str) -> bool:
    return (root / part).is_dir() or (root / f"{part}.py").is_file()


def knots(edges: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one part (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def one_cycle(edges: dict[str, dict[str, list[str]]], component: list[str]) -> list[str]:
    """A shortest path from the component's first part back to itself (breadth first)."""
    start = component[0]
    paths = {target: [start, target] for target in edges.get(start, {}) if target in component}
    while start not in paths:
        paths = {
            target: path + [target]
            for path in paths.values() for target in edges.get(path[-1], {})
            if target in component and target not in path[1:]
        } | paths
    return paths[start]


def describe(edges: dict[str, dict[str, list[str]]], components: list[list[str]]) -> str:
    report = []
    for component in components:
        cycle = one_cycle(edges, component)
        report.append(f"import cycle between {', '.join(component)}: {' -> '.join(cycle)}")
        for source in component:
            for target, lines in sorted(edges.get(source, {}).items()):
                if target in component:
                    report.append(f"  {source} -> {target}:")
                    report.extend(f"    {line}" for line in lines)
    return "\n".join(report)


def test_no_import_cycle_between_top_level_parts() -> None:
    edges = part_edges(SRC)
    assert edges, "no imports found: is SRC right?"
    components = knots(edges)
    assert not components, describe(edges, components)


def test_ml_imports_no_web_or_database_code() -> None:
    """``ml/`` is the engine: usable and testable without the service around it."""
    offending = []
    for path in sorted((SRC / "ml").rglob("*.py")):
        for found in imports_of(path, SRC):
            top = found.module.split(".")[0]
            part = part_of(found.module, SRC.name)
            outside_ml = part is not None and part != "ml" and _exists(SRC, part)  # not __version__
            if top in WEB_AND_DATABASE or outside_ml:
                offending.append(found.line)
    assert not offending, "ml/ must not import web, database or service code:\n" + "\n".join(offending)


# The check itself, on a tree made up for it, so that it is known to be able to fail.


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_check_sees_lazy_and_relative_imports_and_sets_routers_aside(tmp_path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "",
        "a/__init__.py": "",
        "a/service.py": "def later():\n    from pkg.b import service\n",
        "b/__init__.py": "from . import service\n",
        "b/service.py": "from ..c import thing\n",
        "b/router.py": "from pkg import a\n",
        "c.py": "import pkg.a.service\n",
        "d.py": "from pkg import c\n",
    })
    edges = part_edges(root)
    assert edges == {
        "a": {"b": ["pkg/a/service.py:2: from pkg.b import service"]},
        "b": {"c": ["pkg/b/service.py:1: from ..c import thing"]},
        "c": {"a": ["pkg/c.py:1: import pkg.a.service"]},
        "d": {"c": ["pkg/d.py:1: from pkg import c"]},
    }
    components = knots(edges)
    assert components == [["a", "b", "c"]]
    message = describe(edges, components)
    assert "a -> b -> c -> a" in message and "pkg/a/service.py:2: from pkg.b import service" in message
    # The router's import of a is set aside; without it there is no cycle.
    del edges["c"]
    assert knots(edges) == []
