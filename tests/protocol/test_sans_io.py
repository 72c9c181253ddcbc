"""The protocol package stays sans-I/O (docs/architecture.md): no sockets, threads, selectors or clocks.

Each module of syncaerys/protocol/ is read as source and its syntax tree walked,
together with every syncaerys module it imports (relatively or absolutely), so
an I/O import cannot come in through a helper module either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import syncaerys

PACKAGE_ROOT = Path(syncaerys.__file__).resolve().parent
PROTOCOL_DIR = PACKAGE_ROOT / "protocol"
FORBIDDEN = {"socket", "threading", "select", "selectors", "time", "_thread", "asyncio"}
PROTOCOL_MODULES = sorted(path.name for path in PROTOCOL_DIR.glob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(name: str) -> Path | None:
    """The source file of a syncaerys module (None outside syncaerys)."""
    parts = name.split(".")
    if parts[0] != "syncaerys":
        return None
    base = PACKAGE_ROOT.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def package_of(path: Path) -> str:
    return module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]


def imports_of(path: Path, package: str) -> list[tuple[str, int]]:
    """Absolute names of the modules ``path`` imports (``from x import y`` gives x and x.y)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Call):
            # __import__("time") / importlib.import_module("time")
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("__import__", "import_module") and node.args and isinstance(node.args[0], ast.Constant):
                found.append((str(node.args[0].value), node.lineno))
    return found


def test_the_protocol_package_has_the_expected_modules() -> None:
    # so that a wrong path cannot make the checks below pass vacuously
    assert {"__init__.py", "frames.py", "handshake.py", "parser.py", "ratelimit.py"} <= set(PROTOCOL_MODULES)


@pytest.mark.parametrize("filename", PROTOCOL_MODULES)
def test_protocol_module_does_no_io(filename: str) -> None:
    start = PROTOCOL_DIR / filename
    todo = [start]
    seen: set[Path] = set()
    offences = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name, line in imports_of(path, package_of(path)):
            if name.split(".")[0] in FORBIDDEN:
                offences.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{line} imports {name}")
            target = module_path(name)
            # the package's own __init__ is the public API, imported by anything; not followed
            if target is not None and target != PACKAGE_ROOT / "__init__.py":
                todo.append(target)
    assert offences == []


def test_the_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import os\nimport time as clock\nfrom threading import Lock\nfrom select import select\n"
        "import selectors, socket\nx = __import__('_thread')\n"
        "def later():\n    import importlib\n    return importlib.import_module('asyncio')\n"
        "from .. import connection\n",
        encoding="utf-8",
    )
    names = [name for name, _ in imports_of(source, "syncaerys.protocol")]
    assert {name.split(".")[0] for name in names} & FORBIDDEN == FORBIDDEN
    assert "syncaerys.connection" in names  # relative imports are resolved, to be followed
