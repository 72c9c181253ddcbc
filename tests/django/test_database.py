"""Django's database-connection hygiene around each callback, counted on the real PostgreSQL server.

The project's handler (tests/django/project/djchat/sockets.py) runs ORM queries in its
callbacks. The server's own view of the sessions (``pg_stat_activity``) shows what a
process holds: with ``CONN_MAX_AGE = 0`` a client holds a connection only while one of
its callbacks runs; with a longer age, one per client between its callbacks, as one per
thread between a view's requests; none once the clients are gone.
"""

from __future__ import annotations

import json

import pytest

from syncaerys.testing import Client
from syncaerys.testing import connect
from tests.django.conftest import ServerFactory
from tests.django.postgres import Postgres
from tests.django.server import DjangoServer
from tests.utils import wait_until

#: How long many clients, a Django process and PostgreSQL on one loaded machine may take to settle.
SETTLE = 30.0


def _chat(server: DjangoServer, cookie: str, room: str = "lobby") -> Client:
    client = connect(server.url(f"/ws/chat/{room}/"), headers={"Cookie": cookie}, origin=server.origin, timeout=SETTLE)
    assert "hello" in json.loads(client.receive_text())
    return client


@pytest.mark.timeout(120)
def test_two_hundred_clients_hold_no_connection_between_callbacks(
    django_server: ServerFactory, postgres: Postgres, database: str
) -> None:
    server = django_server("runsyncaerys")
    cookie = server.login("ann")
    clients = [_chat(server, cookie, room=f"room{n}") for n in range(200)]
    try:
        # Every handshake read the session and the user, every on_open ran: no connection is left open.
        wait_until(lambda: postgres.connections_to(database) == 0, timeout=SETTLE)
        for client in clients:
            client.send("a note")
        for client in clients:
            assert client.receive_text() == "ann: a note"
        assert postgres.scalar(database, "SELECT count(*) FROM djchat_note WHERE text = 'a note'") == 200
        wait_until(lambda: postgres.connections_to(database) == 0, timeout=SETTLE)
    finally:
        for client in clients:
            client.close()
    wait_until(lambda: server.post("/push/room0/", b"x") == (200, b"0"), timeout=SETTLE)
    wait_until(lambda: postgres.connections_to(database) == 0, timeout=SETTLE)


@pytest.mark.timeout(90)
def test_conn_max_age_keeps_one_connection_per_client_until_it_leaves(
    django_server: ServerFactory, postgres: Postgres, database: str
) -> None:
    server = django_server("runsyncaerys", conn_max_age=60)
    cookie = server.login("ann")
    clients = [_chat(server, cookie) for _ in range(10)]
    for _ in range(3):
        for client in clients:
            client.send("count")
            assert client.receive_text().isdigit()
    # Each client's thread reused its own connection between callbacks, as a thread does between requests.
    assert postgres.connections_to(database) == 10
    for client in clients:
        client.close()
    wait_until(lambda: postgres.connections_to(database) == 0, timeout=SETTLE)


@pytest.mark.timeout(90)
def test_clients_query_in_parallel_on_their_own_threads(
    django_server: ServerFactory, postgres: Postgres, database: str
) -> None:
    """Ten handlers inside a database wait at once (Channels' sync consumers would take turns on one thread)."""
    server = django_server("gunicorn")
    cookie = server.login("ann")
    clients = [_chat(server, cookie) for _ in range(10)]
    for client in clients:
        client.send("sleep:60")
    wait_until(lambda: postgres.active_queries(database, "pg_sleep") == 10, timeout=SETTLE)
    # The database goes away under every one of them: each client is closed with 1011...
    assert postgres.terminate(database, "pg_sleep") == 10
    for client in clients:
        assert client.wait_closed(timeout=SETTLE)
        assert client.close_code == 1011
    # ...and the next client's callbacks get a fresh connection.
    with _chat(server, cookie) as client:
        client.send("count")
        assert client.receive_text().isdigit()
    assert "terminating connection due to administrator command" in server.log()


@pytest.mark.timeout(90)
def test_health_checks_replace_a_connection_that_died_between_callbacks(
    django_server: ServerFactory, postgres: Postgres, database: str
) -> None:
    server = django_server("runsyncaerys", conn_max_age=600, health_checks=1)
    cookie = server.login("ann")
    with _chat(server, cookie) as client:
        client.send("count")
        assert client.receive_text().isdigit()
        wait_until(lambda: postgres.connections_to(database) == 1, timeout=SETTLE)
        assert postgres.terminate(database, "") == 1
        client.send("count")
        assert client.receive_text().isdigit()


@pytest.mark.timeout(90)
def test_atomic_requests_give_each_callback_its_own_transaction(
    django_server: ServerFactory, postgres: Postgres, database: str
) -> None:
    server = django_server("runsyncaerys", atomic=1)
    cookie = server.login("ann")
    with _chat(server, cookie) as client:
        client.send("in-atomic")
        assert client.receive_text() == "true"
        client.send("stays")
        assert client.receive_text() == "ann: stays"
        client.send("fail-after-insert:rolled back")
        assert client.wait_closed(timeout=SETTLE)
        assert client.close_code == 1011
    assert postgres.scalar(database, "SELECT count(*) FROM djchat_note WHERE text = 'stays'") == 1
    assert postgres.scalar(database, "SELECT count(*) FROM djchat_note WHERE text = 'rolled back'") == 0
    # on_close ran in a transaction of its own, after the rollback, and committed.
    wait_until(lambda: postgres.scalar(database, "SELECT count(*) FROM djchat_note WHERE text = 'left with 1011'"))


@pytest.mark.timeout(90)
def test_a_transaction_left_open_by_a_failing_handler_is_rolled_back(
    django_server: ServerFactory, postgres: Postgres, database: str
) -> None:
    server = django_server("runsyncaerys")
    cookie = server.login("ann")
    with _chat(server, cookie) as client:
        client.send("in-atomic")
        assert client.receive_text() == "false"
        client.send("autocommit-off:never committed")
        assert client.wait_closed(timeout=SETTLE)
        assert client.close_code == 1011
    wait_until(lambda: postgres.scalar(database, "SELECT count(*) FROM djchat_note WHERE text = 'left with 1011'"))
    assert postgres.scalar(database, "SELECT count(*) FROM djchat_note WHERE text = 'never committed'") == 0
    wait_until(lambda: postgres.connections_to(database) == 0, timeout=SETTLE)
