"""Which modules of the per-message path an install compiles with mypyc, and the switch back to their sources.

An install made with ``SYNCAERYS_COMPILE=1`` (see the README's "Compiled hot
path") compiles :data:`MODULES` with mypyc, keeping their ``.py`` beside the
compiled modules. ``SYNCAERYS_NO_EXTENSIONS=1`` at run time, which already
turns the C extension off, then makes Python import those sources instead
(:func:`prefer_sources`, which importing this module calls: ``syncaerys/__init__.py``
imports it before any of them), so one install runs either way;
``SYNCAERYS_NO_COMPILED=1`` does the same and leaves the C extension on (the
benchmark's ``syncaerys-source`` server). A compiled class cannot be
subclassed in Python and loses its docstrings: :func:`restore_class_docs`
gives the public classes theirs back; their methods' cannot be set. ``Endpoint``
and the transports stay Python (docs/architecture.md, "What is compiled").
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import os
import sys
import warnings
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["MODULES", "compiled_modules", "prefer_sources", "restore_class_docs", "stale_compiled"]

#: The modules ``setup.py`` compiles with ``SYNCAERYS_COMPILE=1`` (it lists their files).
MODULES = (
    "syncaerys.client.connection",
    "syncaerys.client.fanout",
    "syncaerys.client.sendqueue",
    "syncaerys.futures",
    "syncaerys.message",
    "syncaerys.protocol.parser",
    "syncaerys.protocol.session",
)


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds :data:`MODULES` by their ``.py`` only, so that a compiled module beside one is not loaded."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES or path is None:
            return None
        loaders = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, loaders).find_spec(fullname, target)
            if spec is not None:
                return spec
        return None


def _sources_wanted() -> bool:
    return bool(os.environ.get("SYNCAERYS_NO_EXTENSIONS") or os.environ.get("SYNCAERYS_NO_COMPILED"))


def prefer_sources() -> None:
    """With ``SYNCAERYS_NO_EXTENSIONS`` or ``SYNCAERYS_NO_COMPILED`` set, import :data:`MODULES` from their sources.

    Idempotent; never blocks.

    Call before any of them is imported (a module already imported stays as it is).
    """
    if not _sources_wanted():
        return
    if not any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())


def compiled_modules() -> list[str]:
    """Those of :data:`MODULES` imported from a compiled module (empty for a plain install). Never blocks."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return [
        name
        for name in MODULES
        if name in sys.modules and (getattr(sys.modules[name], "__file__", None) or "").endswith(suffixes)
    ]


def restore_class_docs(classes: Iterable[object]) -> None:
    """Give those of ``classes`` that were compiled their docstrings back, read from their sources. Never blocks.

    mypyc leaves a compiled class's ``__doc__`` empty; a class's can be set
    again, its methods' cannot (``help()`` shows their signatures, the docs
    and editors read the sources). ``syncaerys/__init__.py`` calls it with the
    public names; with nothing compiled it does nothing. Each source is parsed
    once, only for the classes passed (a few milliseconds at import).
    """
    wanted: dict[str, dict[str, type]] = {}
    for cls in classes:
        if isinstance(cls, type) and not cls.__doc__ and cls.__module__ in MODULES:
            wanted.setdefault(cls.__module__, {})[cls.__name__] = cls
    for name, by_name in wanted.items():
        module = sys.modules[name]
        source = Path(module.__file__ or "").with_name(name.rsplit(".", 1)[1] + ".py")
        try:
            tree = ast.parse(source.read_text(encoding="utf-8"))
        except (OSError, SyntaxError):
            continue  # a wheel without its sources: the classes keep mypyc's empty docstrings
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name in by_name:
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    by_name[node.name].__doc__ = doc


def stale_compiled(package: Path = Path(__file__).parent) -> list[tuple[Path, Path]]:
    """``(source, compiled)`` for each of :data:`MODULES` whose source changed after it was compiled. Never blocks.

    Python imports the compiled module, so an edit of its source would be
    ignored: an editable install compiled once and edited since. ``package``
    is the directory of syncaerys's sources. Only a source checkout (a
    ``pyproject.toml`` beside ``package``) is checked: an installed wheel
    writes its sources after its compiled modules, and nobody edits those.
    """
    if not (package.parent / "pyproject.toml").is_file():
        return []
    stale = []
    for name in MODULES:
        source = package.joinpath(*name.split(".")[1:]).with_suffix(".py")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            compiled = source.with_suffix(suffix)
            try:
                if source.stat().st_mtime > compiled.stat().st_mtime:
                    stale.append((source, compiled))
            except OSError:
                continue
    return stale


prefer_sources()
if not _sources_wanted():
    for _source, _compiled in stale_compiled():
        warnings.warn(
            f"{_source} was changed after it was compiled, and Python imports {_compiled.name} instead: "
            "rebuild (SYNCAERYS_COMPILE=1 pip install -e ...), delete the compiled module, "
            "or set SYNCAERYS_NO_COMPILED=1",
            RuntimeWarning,
            stacklevel=2,
        )
