"""Fixtures of the Django tests: a private PostgreSQL server, a migrated database per test, the project's hosts.

The tests need Django, psycopg and Debian's PostgreSQL binaries (``apt-get install
postgresql``); without them they are skipped, so that the README's test command works
on a fresh machine, except with ``SYNCAERYS_REQUIRE_POSTGRES=1`` (CI sets it): then
they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.django.server import DjangoServer
from tests.django.server import manage
from tests.django.server import project_env

try:
    import django  # noqa: F401
    import psycopg  # noqa: F401

    from tests.django.postgres import Postgres
    from tests.django.postgres import binaries

    _missing = "" if binaries() is not None else "PostgreSQL's binaries (apt-get install postgresql)"
except ImportError as error:
    _missing = f"{error.name} (pip install -e '.[test]')"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if _missing:
        if os.environ.get("SYNCAERYS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"the Django tests need {_missing} (SYNCAERYS_REQUIRE_POSTGRES=1)")
        pytest.skip(f"the Django tests need {_missing}")
    bindir = binaries()
    assert bindir is not None
    server = Postgres(bindir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template_database(postgres: Postgres) -> str:
    """A database with the project's migrations applied, copied for each test."""
    name = postgres.create_database()
    result = manage(project_env(name, postgres.port), "migrate", "--no-input", "-v0")
    assert result.returncode == 0, result.stdout + result.stderr
    return name


@pytest.fixture
def database(postgres: Postgres, template_database: str) -> str:
    """This test's own database, migrated."""
    return postgres.create_database(template=template_database)


ServerFactory = Callable[..., DjangoServer]


@pytest.fixture
def django_server(postgres: Postgres, database: str, tmp_path: Path) -> Iterator[ServerFactory]:
    """``django_server(host, **settings)``: the project served by ``host`` (see server.HOSTS) on this test's database.

    ``settings`` are the project's DJ_* environment settings (``conn_max_age="60"``...).
    Every process is stopped at teardown.
    """
    started: list[DjangoServer] = []
    names = iter(range(1, 100))

    def start(host: str, *, expect_failure: bool = False, **settings: Any) -> DjangoServer:
        env = project_env(database, postgres.port, **{k: str(v) for k, v in settings.items()})
        server = DjangoServer(host, env, tmp_path / f"{host}-{next(names)}.log")
        started.append(server)
        server.start(expect_failure=expect_failure)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
