"""The test matrix: every Python the package claims that is on this machine, with and without the C extension.

    nox                       # the matrix: every interpreter, with the extension and without
    nox -s tests-3.12         # one interpreter: with the extension, then the core tests without it
    nox -s core-3.13          # one interpreter, pure Python only
    nox -s compiled-3.12      # the per-message modules compiled by mypyc (SYNCAERYS_COMPILE=1): their tests
    nox -s compiled_suite-3.13  # the whole suite on that build, then the core tests from source
    nox -s lint types docs    # CI's other checks, for a contributor without root

``tests`` runs the whole suite with the extension built for that interpreter, then
the ``core`` tests in the same environment without it (one install instead of two:
the extension is chosen at import); ``core`` runs the protocol, endpoint, message,
large-frame and hostile-input tests with the pure-Python code
(``SYNCAERYS_NO_EXTENSIONS=1``, the install of a machine without a compiler).
Interpreters that are not installed are skipped (``nox
--no-error-on-missing-interpreters``, as .ci/run does); one that is and fails,
fails the run.
"""

from __future__ import annotations

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
CORE = [
    "tests/protocol",
    "tests/hostile",
    "tests/contracts/test_message_binding.py",
    "tests/test_message.py",
    "tests/test_endpoint.py",
    "tests/test_compression.py",
    "tests/test_fuzz_live.py",
    "tests/test_large_frames.py",
]

nox.options.sessions = ["tests"]  # each runs the core tests too
nox.options.reuse_existing_virtualenvs = True


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite with the C extension, then the core tests without it."""
    # Editable, as the README installs: the tests import the package from the project
    # root, so the extension must be built there for this interpreter.
    session.install("-e", ".[test]", "--config-settings", "editable_mode=compat")
    session.env["SYNCAERYS_MATRIX"] = "1"  # tests/test_packaging.py runs in the main suite only
    session.run("python", "-c", "import syncaerys.protocol.mask as m; assert m.SPEEDUPS, 'the extension is not built'")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)
    if not session.posargs:
        _core_tests(session)


def _core_tests(session: nox.Session) -> None:
    env = {"SYNCAERYS_NO_EXTENSIONS": "1"}
    session.run("python", "-c", "import syncaerys.protocol.mask as m; assert not m.SPEEDUPS", env=env)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *CORE, *session.posargs, env=env)


@nox.session(python=PYTHONS)
def core(session: nox.Session) -> None:
    """The protocol and send/receive paths with the pure-Python code."""
    session.env["SYNCAERYS_NO_EXTENSIONS"] = "1"
    session.install("-e", ".[test]", "--config-settings", "editable_mode=compat")
    _core_tests(session)


#: What the compiled session runs: the core tests, and those of the compiled modules' other
#: users (the connection, the send queue and its memory, broadcasts and rooms, closing, gevent).
COMPILED_TESTS = [
    *CORE,
    "tests/unit",
    "tests/docs/test_reference.py",
    "tests/test_close_paths.py",
    "tests/test_compiled.py",
    "tests/test_gevent.py",
    "tests/test_memory.py",
    "tests/test_races.py",
    "tests/test_rooms.py",
]


@nox.session(python=PYTHONS)
def compiled(session: nox.Session) -> None:
    """An install made with ``SYNCAERYS_COMPILE=1``: the compiled modules' tests, then the core tests from source.

    ``nox -s compiled-3.12 -- tests/test_x.py`` runs those tests on that build
    instead (and not the core tests); ``compiled_suite`` runs the whole suite.
    """
    _on_compiled_build(session, session.posargs or COMPILED_TESTS, core_after=not session.posargs)


@nox.session(python=PYTHONS)
def compiled_suite(session: nox.Session) -> None:
    """The whole suite on an install made with ``SYNCAERYS_COMPILE=1``, then the core tests from source.

    What CI runs on Python 3.13 in place of ``tests``: the compiled build gets the whole suite,
    the sources get the core tests, on the same interpreter.
    """
    _on_compiled_build(session, list(session.posargs), core_after=True)


def _on_compiled_build(session: nox.Session, tests: list[str], *, core_after: bool) -> None:
    """Build in place with mypyc, run ``tests`` (all when empty) on it, then the core tests from source if asked.

    The build is in place (an editable install), so its compiled modules are
    deleted afterwards: the other sessions of this interpreter share the tree.
    """
    session.env["SYNCAERYS_MATRIX"] = "1"  # tests/test_packaging.py runs in the main suite only
    try:
        # The README's one command: under build isolation, setup.py asks pip for mypy and the
        # dependencies mypyc type-checks against.
        session.install("-e", ".[test]", "--config-settings", "editable_mode=compat", env={"SYNCAERYS_COMPILE": "1"})
        check = "import syncaerys.compiled as c; assert c.compiled_modules() == list(c.MODULES), c.compiled_modules()"
        session.run("python", "-c", "import syncaerys; " + check)
        session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests)
        if core_after:
            _core_tests(session)  # SYNCAERYS_NO_EXTENSIONS imports the sources, compiled or not
    finally:
        session.run("python", "-c", _REMOVE_COMPILED, silent=True)


_REMOVE_COMPILED = """
import importlib.machinery, pathlib
suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
for path in [*pathlib.Path("syncaerys").rglob("*" + suffix), pathlib.Path("syncaerys_compiled__mypyc" + suffix)]:
    if path.name.startswith("_speedups") or not path.exists():
        continue
    path.unlink()
    print("removed", path)
"""


LINTED = ["syncaerys", "tests", "examples", "compliance", "fuzz", "noxfile.py"]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, as CI runs it: the checks (the size limits and protocol/'s banned imports included) and the format."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict on the package, the tests and the typed examples, as CI runs it."""
    session.install("-e", ".[test]", "--config-settings", "editable_mode=compat")
    session.run("mypy", "--strict", "syncaerys")
    session.run("mypy", "--strict", "tests")
    session.run("mypy", "--strict", "examples/typed_app.py", "examples/flask_app.py")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, warnings as errors (its code blocks run in the test suite, tests/docs)."""
    session.install("-e", ".[docs]", "--config-settings", "editable_mode=compat")
    session.run("python", "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html")
