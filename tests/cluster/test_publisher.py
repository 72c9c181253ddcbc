"""Publisher: a process that is not a server reaches the clients of every server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syncaerys import BackplaneError
from syncaerys import ClientException
from syncaerys import Publisher
from syncaerys.backplane.wire import NODE_SHIFT
from tests.cluster.helpers import CHANNEL
from tests.cluster.helpers import ROOT
from tests.cluster.helpers import STARTUP
from tests.cluster.helpers import NodeFactory
from tests.cluster.helpers import RedisServer
from tests.cluster.helpers import wait_for_membership
from tests.utils import wait_until

PUBLISH = Path(__file__).resolve().parent / "publish.py"


def publish_from_another_process(redis_url: str, *calls: dict[str, Any]) -> list[dict[str, Any]]:
    """Run Publisher calls in a fresh interpreter (``publish.py``); their outcomes."""
    done = subprocess.run(
        [sys.executable, str(PUBLISH), redis_url, CHANNEL, json.dumps(calls)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=STARTUP,
    )
    assert done.returncode == 0, done.stderr
    outcomes: list[dict[str, Any]] = json.loads(done.stdout)
    return outcomes


def test_a_publisher_process_reaches_the_clients_of_both_servers(
    redis_server: RedisServer, start_nodes: NodeFactory
) -> None:
    a, b = start_nodes(2)
    ca, member, cb = a.connect(), a.connect(), b.connect()
    member.call("join", room="r")
    wait_for_membership(ca, member, cb)
    wait_until(lambda: cb.call("room_clients", room="r") == [member.id])

    outcomes = publish_from_another_process(
        redis_server.url,
        {"op": "get_clients"},
        {"op": "room_clients", "args": ["r"]},
        {"op": "broadcast", "args": ["to everyone"]},
        {"op": "broadcast", "args": ["to r"], "kwargs": {"room": "r"}},
        {"op": "send", "args": ["to b", cb.id]},
        {"op": "close", "args": [ca.id, 4002, "from outside"]},
    )
    assert outcomes == [
        {"result": sorted([ca.id, member.id, cb.id])},
        {"result": [member.id]},
        {"result": 2},  # both server processes received it
        {"result": 2},
        {"result": 1},
        {"result": 1},
    ]
    assert ca.next_message() == "to everyone"
    assert ca.expect_close() == (4002, "from outside")
    assert ca.inbox == []
    assert member.next_message() == "to everyone"
    assert member.next_message() == "to r"
    assert cb.next_message() == "to everyone"
    assert cb.next_message() == "to b"  # and not "to r": cb is not in the room


def test_publisher_multicast_and_binary_reach_both_servers(redis_server: RedisServer, start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, ca2, cb = a.connect(), a.connect(), b.connect()
    with Publisher(redis_server.url, channel=CHANNEL) as publisher:
        assert publisher.multicast("listed", [ca.id, cb.id]) == 2
        assert publisher.send(b"\x00\xff", ca.id) == 1
        assert publisher.send_binary("as bytes", cb.id) == 1
        assert publisher.broadcast_binary("binary to all", except_ids=[ca.id]) == 2
    assert ca.next_message() == "listed"
    assert ca.next_message() == b"\x00\xff"
    assert cb.next_message() == "listed"
    assert cb.next_message() == b"as bytes"
    assert cb.next_message() == b"binary to all"
    assert ca2.next_message() == b"binary to all"


def test_publisher_to_a_node_nobody_runs_reaches_nobody(redis_server: RedisServer, start_nodes: NodeFactory) -> None:
    (a,) = start_nodes(1)
    ca = a.connect()
    missing = (ca.call("node") + 1000) << NODE_SHIFT | 1
    with Publisher(redis_server.url, channel=CHANNEL) as publisher:
        # A send that reaches nobody fails naming the id; a close reports 0 nodes.
        with pytest.raises(ClientException, match=str(missing)):
            publisher.send("nobody", missing)
        with pytest.raises(ClientException, match=str(ca.id + 1)):
            publisher.send_binary(b"nobody", ca.id + 1)  # a live node, an id it never had
        with pytest.raises(TypeError):
            publisher.send("x", str(ca.id))  # type: ignore[arg-type]
        assert publisher.close(missing) == 0
        assert publisher.close(ca.id + 1) == 0  # a live node, but not a client of it: nothing was closed
        assert publisher.get_clients() == [ca.id]
        with pytest.raises(ValueError):
            publisher.close(ca.id, 1005)  # a code an endpoint may not send


def test_publisher_raises_backplane_error_while_redis_is_down(redis_server: RedisServer) -> None:
    with Publisher(redis_server.url, channel=CHANNEL, timeout=1.0) as publisher:
        assert publisher.broadcast("nobody listens") == 0
        redis_server.stop()
        for call in (
            lambda: publisher.broadcast("x"),
            lambda: publisher.send("x", 1 << NODE_SHIFT | 1),
            lambda: publisher.multicast("x", [1 << NODE_SHIFT | 1]),
            lambda: publisher.close(1 << NODE_SHIFT | 1),
            publisher.get_clients,
            lambda: publisher.room_clients("r"),
        ):
            with pytest.raises(BackplaneError):
                call()
        redis_server.start()
        assert publisher.broadcast("back") == 0


def test_a_publisher_process_reports_backplane_error_while_redis_is_down(redis_server: RedisServer) -> None:
    redis_server.stop()
    outcomes = publish_from_another_process(redis_server.url, {"op": "broadcast", "args": ["x"]})
    assert outcomes[0]["error"].startswith("BackplaneError: could not publish to Redis")
