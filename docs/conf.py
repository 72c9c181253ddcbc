"""Sphinx configuration: Markdown pages (MyST), the reference from the docstrings (autodoc), the furo theme.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build`` (CI does: warnings are errors).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "syncaerys"
author = "The syncaerys developers"
copyright = "2026, The syncaerys developers"

# No intersphinx: the build must work offline (CI has no route to docs.python.org). For the
# same reason the diagrams are SVG files rendered beforehand (docs/render_diagrams.py), not
# Mermaid drawn in the browser by a script from a CDN.
extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
html_theme = "furo"
html_title = "syncaerys"
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Names in annotations that autodoc cannot link (werkzeug's, the stdlib's typing internals).
nitpicky = False
suppress_warnings = ["myst.xref_missing"]

#: Classes users get from the library and never construct: their constructor's arguments are
#: internals (the registry, the backplane...), so the reference shows no signature for them.
NOT_CONSTRUCTED = {"syncaerys.Endpoint", "syncaerys.Message"}


def hide_internal_constructors(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, return_annotation: str | None
) -> tuple[str, str | None] | None:
    """``autodoc-process-signature``: no signature for the classes of :data:`NOT_CONSTRUCTED`."""
    if what == "class" and name in NOT_CONSTRUCTED:
        return "", None
    return None


def setup(app: Any) -> None:
    app.connect("autodoc-process-signature", hide_internal_constructors)
