"""The docs' reference covers every public name (issue 14, item 1)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import syncaerys

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"


def documented() -> set[str]:
    text = "\n".join(path.read_text() for path in REFERENCE.glob("*.md"))
    names = set(re.findall(r"\.\. auto(?:class|function|data):: syncaerys\.([\w.]+)", text))
    for module in re.findall(r"\.\. automodule:: (syncaerys[\w.]*)", text):
        names.update(getattr(importlib.import_module(module), "__all__", []))
        names.add(module.removeprefix("syncaerys."))
    names.update(re.findall(r"`syncaerys\.(\w+)`", text))  # re-exports described in prose (Request)
    return names


def test_every_public_name_is_in_the_reference() -> None:
    missing = sorted(set(syncaerys.__all__) - documented())
    assert missing == [], f"not in docs/reference: {missing}"


def test_the_submodules_users_import_are_in_the_reference() -> None:
    for module in ("flask", "django", "django.testing", "gunicorn", "testing", "metrics", "exceptions"):
        assert module in documented(), module
