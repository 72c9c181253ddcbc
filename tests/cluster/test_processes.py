"""Two server processes on one redis-server: every Endpoint operation reaches the other process's clients.

Each node is ``tests/cluster/node.py`` in its own interpreter, driven by JSON
commands from its WebSocket clients (see ``NodeClient``). "The next message
is the marker" proves a message did not arrive: operations from one node
travel in order, so one that was delivered would have come first.
"""

from __future__ import annotations

import time
from dataclasses import fields

from syncaerys import ClientInfo
from syncaerys import Publisher
from syncaerys.backplane.wire import NODE_SHIFT
from tests.cluster.helpers import NodeFactory
from tests.cluster.helpers import RedisServer
from tests.cluster.helpers import wait_for_membership
from tests.utils import PROMPTLY
from tests.utils import wait_until


def test_client_ids_carry_their_node_and_differ_across_processes(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()
    assert ca.id >> NODE_SHIFT == ca.call("node")
    assert cb.id >> NODE_SHIFT == cb.call("node")
    assert ca.call("node") != cb.call("node")


def test_broadcast_from_either_process_reaches_the_clients_of_both(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()

    result = ca.call("broadcast", data="from A")
    assert result == {"delivered": 1, "failed": [], "remote_nodes": 1}
    ca.expect("from A")
    cb.expect("from A")

    cb.call("broadcast", data="from B")
    ca.expect("from B")
    cb.expect("from B")


def test_binary_broadcast_arrives_as_binary_on_the_other_process(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()
    ca.call("broadcast", data="bytes", binary=True)
    assert cb.next_message() == b"bytes"


def test_send_reaches_a_client_of_the_other_process(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()
    assert ca.call("send", to=cb.id, data="to b") == 1  # published to one node
    assert cb.next_message() == "to b"
    cb.call("send", to=ca.id, data="to a", binary=True)
    assert ca.next_message() == b"to a"


def test_multicast_reaches_listed_clients_on_both_processes(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, ca2, cb, cb2 = a.connect(), a.connect(), b.connect(), b.connect()
    result = ca.call("multicast", to=[ca2.id, cb.id], data="listed")
    assert result == {"delivered": 1, "failed": [], "remote_nodes": 1}
    assert ca2.next_message() == "listed"
    assert cb.next_message() == "listed"
    ca.call("broadcast", data="marker")
    assert cb2.next_message() == "marker"
    assert ca.next_message() == "marker"


def test_close_of_a_remote_client_sends_the_given_code_and_reason(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()
    ca.call("close", to=cb.id, code=4001, reason="bye")
    assert cb.expect_close() == (4001, "bye")
    wait_until(lambda: ca.call("clients") == [ca.id])


def test_get_clients_on_each_process_lists_the_clients_of_both(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, cb, cb2 = a.connect(), b.connect(), b.connect()
    wait_for_membership(ca, cb, cb2)
    assert ca.call("clients", local=True) == [ca.id]
    assert cb.call("clients", local=True) == sorted([cb.id, cb2.id])


def test_rooms_across_processes(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    member, outsider = a.connect(), a.connect()
    cb = b.connect()
    member.call("join", room="lobby")

    wait_until(lambda: cb.call("room_clients", room="lobby") == [member.id])
    assert cb.call("room_clients", room="lobby", local=True) == []
    assert cb.call("rooms_of", id=member.id) == ["lobby"]
    assert cb.call("rooms_of", id=outsider.id) == []

    result = cb.call("broadcast", data="to the lobby", room="lobby")
    assert result == {"delivered": 0, "failed": [], "remote_nodes": 1}
    cb.call("broadcast", data="marker")
    assert member.next_message() == "to the lobby"
    assert member.next_message() == "marker"
    assert outsider.next_message() == "marker"
    assert cb.next_message() == "marker"


def test_join_and_leave_a_client_of_the_other_process(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, cb = a.connect(), b.connect()
    ca.call("join", to=cb.id, room="r")
    wait_until(lambda: cb.call("rooms_of") == ["r"])
    wait_until(lambda: ca.call("room_clients", room="r") == [cb.id])
    assert ca.call("rooms_of", id=cb.id) == ["r"]

    ca.call("leave", to=cb.id, room="r")
    wait_until(lambda: cb.call("rooms_of") == [])
    wait_until(lambda: ca.call("room_clients", room="r") == [])


def test_a_closed_client_leaves_its_rooms_in_the_cluster_view(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca, leaving = a.connect(), a.connect()
    cb = b.connect()
    ca.call("join", room="r")
    leaving.call("join", room="r")
    wait_until(lambda: cb.call("room_clients", room="r") == sorted([ca.id, leaving.id]))

    leaving.close()
    wait_until(lambda: cb.call("clients") == sorted([ca.id, cb.id]))
    wait_until(lambda: cb.call("room_clients", room="r") == [ca.id])
    assert cb.call("rooms_of", id=leaving.id) == []
    assert ca.call("room_clients", room="r", local=True) == [ca.id]


def test_broadcast_except_a_remote_client(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2)
    ca = a.connect()
    excluded, included = b.connect(), b.connect()
    ca.call("broadcast", data="not for you", except_ids=[excluded.id])
    ca.call("broadcast", data="marker")
    assert included.next_message() == "not for you"
    assert excluded.next_message() == "marker"


def test_get_info_of_a_remote_client_asks_its_process(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2, request_timeout=1.0)
    ca, cb = a.connect(), b.connect()
    cb.call("whoami")  # cb has now sent two messages and received two replies

    info = ca.call("info", id=cb.id)
    assert set(info) == {f.name for f in fields(ClientInfo)}
    assert info["messages_read"] >= 2
    assert info["messages_sent"] >= 2
    assert "127.0.0.1" in info["remote_address"]
    assert info["closed_at"] == 0.0


def test_get_info_of_an_unknown_remote_id_is_none(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2, request_timeout=1.0)
    ca, cb = a.connect(), b.connect()
    node_b = cb.call("node")
    # The node exists and answers "unknown" at once.
    assert ca.call("info", id=node_b << NODE_SHIFT | 999_999) is None
    # No node answers: None after the request timeout.
    assert ca.call("info", id=(node_b + 1000) << NODE_SHIFT | 1) is None


def test_a_killed_process_leaves_the_cluster_within_the_node_ttl(start_nodes: NodeFactory) -> None:
    node_ttl = 2.0
    a, b = start_nodes(2, node_ttl=node_ttl)
    ca, cb = a.connect(), b.connect()
    cb.call("join", room="r")
    wait_for_membership(ca, cb)
    wait_until(lambda: ca.call("room_clients", room="r") == [cb.id])

    b.kill()  # SIGKILL: nothing is removed from Redis
    wait_until(lambda: ca.call("clients") == [ca.id], timeout=node_ttl + PROMPTLY)
    assert ca.call("room_clients", room="r") == []


def test_a_gracefully_stopped_process_leaves_the_cluster_at_once(start_nodes: NodeFactory) -> None:
    a, b = start_nodes(2, node_ttl=30.0)
    ca, cb = a.connect(), b.connect()
    wait_for_membership(ca, cb)
    b.terminate()
    # Long before the 30 s node TTL: the stopping node removed itself.
    wait_until(lambda: ca.call("clients") == [ca.id], timeout=PROMPTLY)


def test_two_channels_are_two_clusters(redis_server: RedisServer, start_nodes: NodeFactory) -> None:
    (a,) = start_nodes(1, channel="one")
    (b,) = start_nodes(1, channel="two")
    ca, cb = a.connect(), b.connect()
    assert ca.call("broadcast", data="for channel one")["remote_nodes"] == 0
    assert ca.call("clients") == [ca.id]
    assert cb.call("clients") == [cb.id]
    # Published after the broadcast, on the one connection node B listens on: it would come second.
    with Publisher(redis_server.url, channel="two") as publisher:
        assert publisher.broadcast("marker") == 1
    assert cb.next_message() == "marker"


def test_membership_outlives_the_node_ttl_while_nothing_changes(start_nodes: NodeFactory) -> None:
    node_ttl = 1.5
    a, b = start_nodes(2, node_ttl=node_ttl)
    ca, cb = a.connect(), b.connect()
    cb.call("join", room="r")
    wait_for_membership(ca, cb)
    # Nobody joins, leaves, connects or closes for two TTLs: the heartbeats alone keep b listed.
    deadline = time.monotonic() + 2 * node_ttl
    while time.monotonic() < deadline:
        assert ca.call("clients") == sorted([ca.id, cb.id])
        assert ca.call("room_clients", room="r") == [cb.id]
        assert ca.call("rooms_of", id=cb.id) == ["r"]
