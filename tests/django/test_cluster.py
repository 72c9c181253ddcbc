"""The Django project on several gunicorn workers joined by a Redis backplane, and a push from another process.

A room spans the workers: a message said on one worker reaches the clients of the
other, and a management command (another process, serving no websocket) pushes to
the room with ``syncaerys.Publisher`` on the same Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncaerys.testing import Client
from syncaerys.testing import connect
from tests.cluster.helpers import RedisServer
from tests.cluster.helpers import private_redis
from tests.django.conftest import ServerFactory
from tests.django.server import manage

#: Clients to open at most until both workers hold one (the kernel spreads accepts between them).
MAX_CLIENTS = 24


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis(tmp_path) as server:
        yield server


@pytest.mark.timeout(90)
def test_a_room_spans_gunicorn_workers_and_a_management_command_pushes(
    django_server: ServerFactory, redis: RedisServer
) -> None:
    server = django_server("gunicorn", redis_url=redis.url, extra_args="-w 2")
    cookie = server.login("ann")
    by_worker: dict[int, Client] = {}
    opened: list[Client] = []
    try:
        while len(by_worker) < 2:
            assert len(opened) < MAX_CLIENTS, "every connection went to one worker"
            client = connect(server.url("/ws/chat/lobby/"), headers={"Cookie": cookie}, origin=server.origin)
            opened.append(client)
            by_worker.setdefault(json.loads(client.receive_text())["pid"], client)
        first, _ = by_worker.values()
        first.send("across workers")
        for client in opened:
            assert client.receive_text() == "ann: across workers"
        result = manage(server.env, "announce", "lobby", "from a command")
        assert result.returncode == 0, result.stderr
        assert "published to 2 node(s)" in result.stdout
        for client in opened:
            assert client.receive_text() == "from a command"
    finally:
        for client in opened:
            client.close()
