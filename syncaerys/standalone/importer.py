"""Which program, if any, is importing the module that called us (``flask run``, gunicorn, Django...).

A module that ends with an unguarded ``syncaerys.run(app)`` is run when such a
program imports it to find ``app``: :func:`~syncaerys.run` asks here, and
says so instead of taking the process over.
"""

from __future__ import annotations

import sys
from types import FrameType

__all__ = ["importing_program"]

#: Module names (or their packages) whose frames import an application, and how users call that program.
_IMPORTERS = (
    ("flask.cli", "flask run"),
    ("gunicorn", "gunicorn"),
    ("syncaerys.standalone.cli", "python -m syncaerys"),
    ("syncaerys.cli", "python -m syncaerys"),
    ("uvicorn", "uvicorn"),
    # manage.py runserver and runsyncaerys, gunicorn's import of wsgi.py: Django imports the URLconf, the apps...
    ("django", "Django"),
    ("waitress", "waitress-serve"),
)


def _is_import_machinery(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith("<frozen importlib")


def importing_program(frame: FrameType | None = None) -> tuple[str, str] | None:
    """``(program, module)`` when the caller's module is being imported by a known serving program.

    ``frame`` is where to start looking (by default, the caller's caller). ``module``
    is the name of the innermost module whose import is under way. Thread-safe; never blocks.
    """
    current: FrameType | None = frame if frame is not None else sys._getframe(2)
    imported: str | None = None
    while current is not None:
        outer = current.f_back
        if not _is_import_machinery(current):
            name = str(current.f_globals.get("__name__", ""))
            if imported is None:
                if outer is not None and _is_import_machinery(outer):
                    imported = name  # a module's top-level code, run by an import
            else:
                for prefix, program in _IMPORTERS:
                    if name == prefix or name.startswith(prefix + "."):
                        return program, imported
        current = outer
    return None
