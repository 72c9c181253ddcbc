"""The Django integration under every host Django users run: runserver (with and without its autoreloader),
gunicorn's gthread worker with the project's wsgi.py, manage.py runsyncaerys and python -m syncaerys.

Each host serves the same project (tests/django/project) on a real PostgreSQL database:
a logged-in user's handshake sees the session, the user and the locale; messages are
stored with the ORM and broadcast to a room; a plain view pushes; a plain GET gets 426;
and the host's stop closes every client with 1001 after ``on_close`` wrote its row.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from syncaerys.testing import HandshakeRejected
from syncaerys.testing import connect
from tests.django.conftest import ServerFactory
from tests.django.postgres import Postgres
from tests.django.server import HOSTS
from tests.django.server import PROJECT
from tests.django.server import DjangoServer
from tests.utils import wait_until

#: How each host is stopped as its users stop it: Ctrl-C for the development servers, SIGTERM otherwise.
STOP_SIGNAL = {
    "runserver": signal.SIGINT,
    "runserver-autoreload": signal.SIGINT,
    "gunicorn": signal.SIGTERM,
    "runsyncaerys": signal.SIGTERM,
    "python-m-syncaerys": signal.SIGTERM,
}

#: How long runserver's reloader may take to see a change and serve again on a loaded machine.
RELOAD_BOUND = 30.0


@pytest.mark.timeout(90)
@pytest.mark.parametrize("host", list(HOSTS))
def test_chat_with_the_orm_a_push_and_a_graceful_stop(
    host: str, django_server: ServerFactory, postgres: Postgres, database: str
) -> None:
    server = django_server(host)
    ann, bob = server.login("ann"), server.login("bob")
    with (
        connect(
            server.url("/ws/chat/lobby/"), headers={"Cookie": ann, "Accept-Language": "fr"}, origin=server.origin
        ) as first,
        connect(server.url("/ws/chat/lobby/"), headers={"Cookie": bob}, origin=server.origin) as second,
    ):
        assert json.loads(first.receive_text())["hello"] == {"room": "lobby", "user": "ann", "language": "fr"}
        assert json.loads(second.receive_text())["hello"]["user"] == "bob"

        first.send("hi bob")
        assert second.receive_text() == "ann: hi bob"
        assert first.receive_text() == "ann: hi bob"
        assert postgres.scalar(database, "SELECT count(*) FROM djchat_note WHERE text = 'hi bob'") == 1

        assert server.post("/push/lobby/", b"from a view") == (200, b"2")
        assert first.receive_text() == second.receive_text() == "from a view"

        status, _, _ = server.get("/ws/chat/lobby/")
        assert status == 426

        server.signal(STOP_SIGNAL[host])
        # The host's stop on a loaded machine: runserver's serve loop, then the gateways' stop.
        closed = first.wait_closed(RELOAD_BOUND, raise_timeout=False) and second.wait_closed(
            RELOAD_BOUND, raise_timeout=False
        )
        if not closed:
            pytest.fail(f"still open after the stop: {first}, {second}; the host's log:\n{server.log()}")
        assert (first.close_code, second.close_code) == (1001, 1001)
        assert server.wait() in (0, -signal.SIGINT, 1)  # runserver exits 1 on Ctrl-C with the reloader's child
    assert postgres.scalar(database, "SELECT count(*) FROM djchat_note WHERE text = 'left with 1001'") == 2
    assert postgres.connections_to(database) == 0
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.timeout(90)
def test_autoreload_closes_clients_with_1001_and_serves_again(django_server: ServerFactory) -> None:
    server = django_server("runserver-autoreload")
    cookie = server.login("ann")
    with connect(server.url("/ws/chat/lobby/"), headers={"Cookie": cookie}, origin=server.origin) as client:
        client.receive_text()
        # The reloader looks once a second and takes the first mtime it sees of a newly imported
        # module as its baseline: a touch before it first saw sockets.py goes unnoticed, so touch again.
        deadline = time.monotonic() + RELOAD_BOUND
        while not client.wait_closed(timeout=1.5, raise_timeout=False):
            assert time.monotonic() < deadline, server.log()
            (PROJECT / "djchat" / "sockets.py").touch()
        assert client.close_code == 1001
    wait_until(lambda: server.log().count("Watching for file changes") >= 2, timeout=RELOAD_BOUND)
    wait_until(lambda: _serves(server), timeout=RELOAD_BOUND)
    with connect(server.url("/ws/echo/"), origin=server.origin) as client:
        client.send("again")
        assert client.receive_text().startswith("again")


def _serves(server: DjangoServer) -> bool:
    try:
        return server.get("/health/")[0] == 200
    except OSError:
        return False


def test_an_anonymous_handshake_gets_the_handlers_redirect(django_server: ServerFactory) -> None:
    server = django_server("runserver")
    with pytest.raises(HandshakeRejected) as denied:
        connect(server.url("/ws/chat/lobby/"), origin=server.origin)
    assert denied.value.status == 302
    assert denied.value.headers["location"] == "/login/?next=/ws/chat/lobby/"
