"""The opt-in compiled hot path (SYNCAERYS_COMPILE=1): what it compiles, the switch to the sources, the stale check."""

from __future__ import annotations

import ast
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncaerys import compiled

ROOT = Path(__file__).resolve().parent.parent
MODULES_FILES = """
import importlib, json, sys
import syncaerys
from syncaerys.compiled import MODULES, compiled_modules
for name in MODULES:
    importlib.import_module(name)
print(json.dumps({"files": [sys.modules[name].__file__ for name in MODULES], "compiled": compiled_modules()}))
"""


def _setup_list(name: str) -> list[str]:
    """The list of strings that setup.py assigns to ``name``, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                assert node.value is not None
                value = ast.literal_eval(node.value)
                assert isinstance(value, list)
                return [str(item) for item in value]
    raise AssertionError(f"setup.py has no {name}")


def test_setup_compiles_the_files_of_the_modules_listed() -> None:
    expected = [name.replace(".", "/") + ".py" for name in compiled.MODULES]
    assert _setup_list("COMPILED_SOURCES") == expected
    for path in expected:
        assert (ROOT / path).is_file()


def _loaded(no_extensions: bool) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCAERYS_NO_EXTENSIONS"}
    if no_extensions:
        env["SYNCAERYS_NO_EXTENSIONS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", MODULES_FILES], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_no_extensions_imports_every_compiled_module_from_its_source() -> None:
    loaded = _loaded(no_extensions=True)
    assert loaded["compiled"] == []
    assert all(path.endswith(".py") for path in loaded["files"]), loaded["files"]


def test_a_compiled_install_imports_them_all_compiled() -> None:
    loaded = _loaded(no_extensions=False)
    if not loaded["compiled"]:
        pytest.skip("this install was not made with SYNCAERYS_COMPILE=1")
    assert loaded["compiled"] == list(compiled.MODULES)


def _package_with_one_stale_module(package: Path) -> tuple[Path, Path]:
    """A fake package tree: parser compiled after its source, connection edited after; returns connection's pair."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (package / "client").mkdir(parents=True)
    (package / "protocol").mkdir()
    fresh_source = package / "protocol" / "parser.py"
    fresh_source.write_text("")
    (package / "protocol" / f"parser{suffix}").write_bytes(b"")
    os.utime(fresh_source, (1_000, 1_000))
    edited = package / "client" / "connection.py"
    edited.write_text("")
    built = package / "client" / f"connection{suffix}"
    built.write_bytes(b"")
    os.utime(built, (1_000, 1_000))
    (package / "client" / "sendqueue.py").write_text("")  # never compiled: nothing to report
    return edited, built


def test_a_source_changed_after_its_compiled_module_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")  # a source checkout
    edited, built = _package_with_one_stale_module(tmp_path / "syncaerys")

    assert compiled.stale_compiled(tmp_path / "syncaerys") == [(edited, built)]


def test_an_installed_package_is_not_checked(tmp_path: Path) -> None:
    """A wheel's install writes the sources after the compiled modules: newer, and not edited."""
    _package_with_one_stale_module(tmp_path / "site-packages" / "syncaerys")

    assert compiled.stale_compiled(tmp_path / "site-packages" / "syncaerys") == []


def test_the_build_asks_for_what_mypyc_type_checks_against() -> None:
    """setup.py's COMPILE_REQUIRES: mypy, and each of pyproject.toml's dependencies, with the same bounds."""
    requires = _setup_list("COMPILE_REQUIRES")
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(r for r in requires if not r.startswith("mypy")) == sorted(dependencies)
    assert any(r.startswith("mypy>=") for r in requires)


def test_no_compiled_module_names_an_attribute_thread() -> None:
    """mypyc turns an attribute ``_thread`` into C's ``__thread`` keyword, and the build fails (mypy 2.4)."""
    for name in compiled.MODULES:
        tree = ast.parse((ROOT / (name.replace(".", "/") + ".py")).read_text())
        named = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "_thread"]
        assert named == [], f"{name} names an attribute _thread at lines {named}: rename it"


def test_every_public_class_has_its_docstring_at_run_time() -> None:
    """mypyc leaves a compiled class's ``__doc__`` empty; importing syncaerys restores it from the source."""
    import syncaerys

    classes = [getattr(syncaerys, name) for name in syncaerys.__all__]
    missing = [cls.__name__ for cls in classes if isinstance(cls, type) and not (cls.__doc__ or "").strip()]
    assert missing == []
    assert "never construct" in (syncaerys.Message.__doc__ or "")
