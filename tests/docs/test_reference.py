"""The docs' reference covers every public name."""

from __future__ import annotations

import importlib
import importlib.util
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


def test_the_reference_shows_no_internal_constructor_arguments() -> None:
    """``Endpoint(clients, backplane, started)`` was in the reference; users never construct it."""
    import inspect

    spec = importlib.util.spec_from_file_location("docs_conf", REFERENCE.parent / "conf.py")
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    for name in ("Endpoint", "Message"):
        obj = getattr(syncaerys, name)
        assert str(inspect.signature(obj)) != "()", "nothing to hide"
        signature = conf.hide_internal_constructors(None, "class", f"syncaerys.{name}", obj, {}, "(x)", None)
        assert signature == ("", None), name
        assert "never construct" in (obj.__doc__ or ""), f"{name}'s docstring should say where it comes from"
    # Classes users do construct keep their signature.
    assert (
        conf.hide_internal_constructors(None, "class", "syncaerys.Server", syncaerys.Server, {}, "(app)", None) is None
    )
