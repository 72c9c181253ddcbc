"""Redis going away: the hooks fire, remote operations fail clearly, local ones go on, and all of it comes back."""

from __future__ import annotations

import pytest

from tests.cluster.helpers import NodeFactory
from tests.cluster.helpers import RedisServer
from tests.cluster.helpers import wait_for_membership
from tests.utils import PROMPTLY
from tests.utils import wait_until


@pytest.mark.timeout(90)
def test_redis_restart_fires_the_hooks_and_the_cluster_comes_back(
    redis_server: RedisServer, start_nodes: NodeFactory
) -> None:
    a, b = start_nodes(2, max_reconnect_delay=0.2)
    ca, cb = a.connect(), b.connect()
    wait_for_membership(ca, cb)

    redis_server.stop()
    ca.expect_event("backplane_down")
    cb.expect_event("backplane_down")
    assert ca.call("up") is False

    # Remote operations fail with BackplaneError...
    reply = ca.request("send", to=cb.id, data="lost")
    assert reply["error"].startswith("BackplaneError")
    reply = ca.request("multicast", to=[cb.id], data="lost")
    assert reply["error"].startswith("BackplaneError")
    reply = ca.request("broadcast", data="local only")
    assert reply["error"].startswith("BackplaneError")
    assert reply["local_result"] == {"delivered": 1, "failed": [], "remote_nodes": 0}
    # ...and local ones still work: the broadcast was delivered here, a local send too.
    assert ca.next_message() == "local only"
    assert ca.call("send", data="to myself") > 0
    assert ca.next_message() == "to myself"
    # The cluster view falls back to this process's clients.
    assert ca.call("clients") == [ca.id]

    redis_server.restart()  # empty: it had no persistence
    ca.expect_event("backplane_up", timeout=2 * PROMPTLY)
    cb.expect_event("backplane_up", timeout=2 * PROMPTLY)
    assert ca.call("up") is True

    # Each node wrote its membership again into the empty Redis.
    wait_for_membership(ca, cb)
    ca.call("broadcast", data="back from A")
    assert cb.next_message() == "back from A"  # and not "lost": nothing is replayed
    assert cb.call("send", to=ca.id, data="back from B") == 1
    ca.expect("back from B")


def test_rooms_are_rewritten_after_redis_lost_its_data(redis_server: RedisServer, start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()
    cb.call("join", room="r")
    wait_until(lambda: ca.call("room_clients", room="r") == [cb.id])

    redis_server.restart()
    cb.expect_event("backplane_down")
    cb.expect_event("backplane_up", timeout=2 * PROMPTLY)

    wait_until(lambda: ca.call("room_clients", room="r") == [cb.id])
    assert ca.call("rooms_of", id=cb.id) == ["r"]
    ca.call("broadcast", data="to r", room="r")
    assert cb.next_message() == "to r"


def test_a_node_joins_and_leaves_rooms_locally_while_redis_is_down(
    redis_server: RedisServer, start_nodes: NodeFactory
) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()
    redis_server.stop()
    cb.expect_event("backplane_down")
    cb.call("join", room="during")
    assert cb.call("room_clients", room="during") == [cb.id]
    assert cb.call("rooms_of") == ["during"]

    redis_server.start()
    cb.expect_event("backplane_up", timeout=2 * PROMPTLY)
    # What changed meanwhile reaches Redis with the rewrite after the reconnection.
    wait_until(lambda: ca.call("room_clients", room="during") == [cb.id])


def test_the_listener_resubscribes_after_redis_kills_its_pubsub_connection(
    redis_server: RedisServer, start_nodes: NodeFactory
) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()
    ca.call("broadcast", data="before")
    cb.expect("before")

    admin = redis_server.client()
    try:
        killed = admin.client_kill_filter(_type="pubsub")
    finally:
        admin.close()
    assert killed >= 2  # one listener per node
    for client in (ca, cb):
        client.expect_event("backplane_down")
        client.expect_event("backplane_up")

    ca.call("broadcast", data="after, from A")
    cb.expect("after, from A")
    cb.call("broadcast", data="after, from B")
    ca.expect("after, from B")
    assert ca.call("send", to=cb.id, data="direct") == 1
    cb.expect("direct")
