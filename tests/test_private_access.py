"""No module of syncaerys reads another module's private names.

Each module's syntax tree is walked. A private name is one with a single leading
underscore. A module may use its own private names on anything (``other._x`` where
``_x`` is defined in the same module: another instance of its own class) and any
name on ``self``/``cls`` (inherited ones included). It fails when it reads, on
anything else, a private name that only another syncaerys module defines, or
imports a private name from another module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import syncaerys

PACKAGE_ROOT = Path(syncaerys.__file__).resolve().parent
MODULES = sorted(PACKAGE_ROOT.rglob("*.py"))

# Private by spelling, public by contract: the namedtuple API.
PROTOCOL_NAMES = {"_replace", "_asdict", "_fields", "_make"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PROTOCOL_NAMES


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE_ROOT.parent))


def defined_names(tree: ast.AST) -> set[str]:
    """The private names a module defines: functions, classes, assignments, attributes set, slots."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.attr)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("_"):
            names.add(node.value)  # __slots__ entries
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {name for name in names if is_private(name)}


def private_uses(path: Path, tree: ast.AST, own: set[str], everyone: dict[str, set[str]]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("syncaerys")):
            for alias in node.names:
                if is_private(alias.name) and not alias.name.startswith("_speedups"):
                    found.append(f"{relative(path)}:{node.lineno} imports {alias.name}")
        if not isinstance(node, ast.Attribute) or not is_private(node.attr):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in ("self", "cls"):
            continue
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
            continue
        if node.attr in own:
            continue
        owners = sorted(module for module, names in everyone.items() if node.attr in names)
        if owners:
            found.append(f"{relative(path)}:{node.lineno} reads .{node.attr}, private to {', '.join(owners)}")
    return found


def test_no_module_reads_another_modules_private_names() -> None:
    trees = {path: ast.parse(path.read_text(), str(path)) for path in MODULES}
    everyone: dict[str, set[str]] = defaultdict(set)
    for path, tree in trees.items():
        everyone[relative(path)] = defined_names(tree)
    violations = []
    for path, tree in trees.items():
        violations.extend(private_uses(path, tree, everyone[relative(path)], everyone))
    assert violations == [], "\n".join(violations)


def test_the_check_sees_a_violation() -> None:
    """The walk itself works: a reach into another module's private attribute is reported."""
    source = "def f(endpoint):\n    return endpoint._clients\n"
    tree = ast.parse(source)
    uses = private_uses(PACKAGE_ROOT / "fake.py", tree, set(), {"syncaerys/endpoint.py": {"_clients"}})
    assert uses == ["syncaerys/fake.py:2 reads ._clients, private to syncaerys/endpoint.py"]
