"""Each folder of the package is one layer, and the imports between them go one way.

Like tests/protocol/test_sans_io.py, each module is read as source and its
imports followed through every syncaerys module they reach (TYPE_CHECKING and
function-level imports included), so a rule cannot be broken through a helper
module either. docs/architecture.md explains the layers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.protocol.test_sans_io import PACKAGE_ROOT
from tests.protocol.test_sans_io import imports_of
from tests.protocol.test_sans_io import module_name
from tests.protocol.test_sans_io import module_path
from tests.protocol.test_sans_io import package_of

#: The modules users import; the layers below never reach them.
USER_FACING = (
    "syncaerys.websocket",
    "syncaerys.gateway",
    "syncaerys.endpoint",
    "syncaerys.server",
    "syncaerys.host",
    "syncaerys.router",
    "syncaerys.responders",
    "syncaerys.response",
    "syncaerys.flask",
    "syncaerys.gunicorn",
    "syncaerys.metrics",
    "syncaerys.publisher",
    "syncaerys.testing",
)

#: folder -> (what no module of it may reach, the exceptions to that, each with its reason).
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # The I/O of one client: it calls the application through client.handler.Handler.
    "client": (("syncaerys.serving", "syncaerys.standalone", "syncaerys.backplane.publisher", *USER_FACING), ()),
    # The HTTP side knows nothing of clients, except the shared timer for its deadlines.
    "serving": (
        ("syncaerys.client", "syncaerys.standalone", "syncaerys.backplane", *USER_FACING),
        ("syncaerys.client.timer",),
    ),
    # Redis and the wire format: below the endpoint; the publisher checks client ids as the endpoint does.
    "backplane": (
        ("syncaerys.client", "syncaerys.serving", "syncaerys.standalone", *USER_FACING),
        ("syncaerys.client.ids",),
    ),
    # sans-I/O (test_sans_io checks the standard library side): nothing of the package but its errors.
    "protocol": (
        (
            "syncaerys.client",
            "syncaerys.serving",
            "syncaerys.standalone",
            "syncaerys.backplane",
            "syncaerys.options",
            "syncaerys.message",
            "syncaerys.futures",
            *USER_FACING,
        ),
        (),
    ),
}

#: Who may import standalone/ (the runner is for programs, never needed by a WSGI host).
STANDALONE_IMPORTERS = {"syncaerys", "syncaerys.__main__"}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def reached_from(start: Path) -> list[tuple[str, str]]:
    """(module that imports, module imported) for every syncaerys import reachable from ``start``."""
    todo = [start]
    seen: set[Path] = set()
    edges = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name, line in imports_of(path, package_of(path)):
            target = module_path(name)
            if target is None:
                continue
            edges.append((f"{path.relative_to(PACKAGE_ROOT.parent)}:{line}", module_name(target)))
            # the package's own __init__ is the public API; not followed (as in test_sans_io)
            if target != PACKAGE_ROOT / "__init__.py":
                todo.append(target)
    return edges


def offences(folder: str) -> list[str]:
    forbidden, allowed = RULES[folder]
    found = []
    for start in sorted((PACKAGE_ROOT / folder).glob("*.py")):
        for where, imported in reached_from(start):
            if within(imported, forbidden) and not within(imported, allowed):
                found.append(f"{module_name(start)} reaches {imported} ({where})")
    return sorted(set(found))


def test_every_folder_has_a_rule() -> None:
    folders = {path.parent.name for path in PACKAGE_ROOT.glob("*/__init__.py")}
    # testing/ is a user-facing helper, django/ (when present) a host integration: top-level modules' peers;
    # standalone/ has its own rule below
    assert folders - {"testing", "django", "standalone"} == set(RULES)


@pytest.mark.parametrize("folder", sorted(RULES))
def test_folder_keeps_to_its_layer(folder: str) -> None:
    assert (PACKAGE_ROOT / folder / "__init__.py").is_file()
    assert offences(folder) == []


def test_only_the_entry_points_import_standalone() -> None:
    found = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        importer = module_name(path)
        if within(importer, ("syncaerys.standalone",)) or importer in STANDALONE_IMPORTERS:
            continue
        for name, line in imports_of(path, package_of(path)):
            if within(name, ("syncaerys.standalone",)):
                found.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{line} imports {name}")
    assert found == []


def test_the_walk_sees_a_layer_crossing(tmp_path: Path) -> None:
    """The checker itself works: a client module importing the gateway (through a helper) is caught."""
    helper = PACKAGE_ROOT / "client" / "connection.py"
    edges = reached_from(helper)
    assert any(imported == "syncaerys.client.sendqueue" for _, imported in edges)  # followed in the folder
    assert any(imported == "syncaerys.protocol.parser" for _, imported in edges)  # and out of it, transitively
    sample = tmp_path / "sample.py"
    sample.write_text("from ..options import Options\nfrom ..gateway import Gateway\n", encoding="utf-8")
    names = [name for name, _ in imports_of(sample, "syncaerys.client")]
    assert within("syncaerys.gateway", RULES["client"][0])
    assert "syncaerys.gateway" in names
