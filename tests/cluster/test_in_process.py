"""Finer RedisBackplane semantics, with two Servers in the test process (separate backplanes, one Redis).

The servers' handlers are Recorders, so that the tests call their Endpoints
directly and look at the futures they return.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

import syncaerys
from syncaerys import BackplaneError
from syncaerys import BroadcastResult
from syncaerys import ClientException
from syncaerys import ClientInfo
from syncaerys import Publisher
from syncaerys import RedisBackplane
from syncaerys.backplane.wire import NODE_SHIFT
from tests.cluster.helpers import RedisServer
from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url
from tests.utils import wait_until

CHANNEL = "in-process"


class HookRecorder(Recorder):
    """Records the backplane hooks too."""

    def on_backplane_down(self) -> None:
        self.record("backplane_down")

    def on_backplane_up(self) -> None:
        self.record("backplane_up")


class Node:
    """A server of the cluster in this process, and its clients."""

    def __init__(self, server: syncaerys.Server, recorder: HookRecorder, stack: contextlib.ExitStack) -> None:
        self.server = server
        self.recorder = recorder
        self.stack = stack

    @property
    def endpoint(self) -> syncaerys.Endpoint:
        return self.recorder.endpoint

    @property
    def backplane(self) -> RedisBackplane:
        backplane = self.endpoint.backplane
        assert isinstance(backplane, RedisBackplane)
        return backplane

    def connect(self) -> tuple[ClientConnection, int]:
        """A client of this server, and its id."""
        opened = len([e for e in self.recorder.events if e[0] == "open"])
        ws = self.stack.enter_context(connect(url(self.server), open_timeout=PROMPTLY, close_timeout=PROMPTLY))
        event = self.recorder.wait_for(lambda events: [e for e in events if e[0] == "open"][opened:])
        return ws, int(event[0][1])


@pytest.fixture
def start_node(redis_server: RedisServer) -> Iterator[Any]:
    """``start_node(**RedisBackplane options)``: a Server on the test's Redis, stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def start(redis_url: str | None = None, **options: Any) -> Node:
            options = {"channel": CHANNEL, "request_timeout": SECOND, "max_reconnect_delay": 0.2, **options}
            backplane = RedisBackplane(redis_url or redis_server.url, **options)
            recorder = HookRecorder()
            # Clients (entered later) close before their server stops.
            node_stack = contextlib.ExitStack()
            server = stack.enter_context(serve(recorder, backplane=backplane))
            stack.enter_context(node_stack)
            return Node(server, recorder, node_stack)

        yield start


def published(future: syncaerys.SendFuture[Any]) -> Any:
    return future.result(PROMPTLY)


def test_remote_futures_resolve_to_the_number_of_other_nodes_reached(start_node: Any) -> None:
    a, b, c = start_node(), start_node(), start_node()
    _, a_id = a.connect()
    ws_b, b_id = b.connect()
    c.connect()
    assert published(a.endpoint.send("to b", b_id)) == 1
    assert ws_b.recv(PROMPTLY) == "to b"
    assert published(a.endpoint.broadcast("all")) == BroadcastResult(delivered=1, failed=(), remote_nodes=2)
    assert published(a.endpoint.multicast("some", [a_id, b_id])) == BroadcastResult(1, (), 1)


def test_a_node_applies_its_own_broadcast_once(redis_server: RedisServer, start_node: Any) -> None:
    a = start_node()
    ws, _ = a.connect()
    assert published(a.endpoint.broadcast("once")).remote_nodes == 0
    # Published after the broadcast: its own copy from Redis, if applied, would come first.
    with Publisher(redis_server.url, channel=CHANNEL) as publisher:
        assert publisher.broadcast("marker") == 1
    assert ws.recv(PROMPTLY) == "once"
    assert ws.recv(PROMPTLY) == "marker"


def test_remote_binary_send_and_multicast_arrive_as_binary(start_node: Any) -> None:
    a, b = start_node(), start_node()
    ws, b_id = b.connect()
    a.endpoint.send(b"\x00\x01", b_id)
    a.endpoint.send_binary("text as bytes", b_id)
    a.endpoint.multicast_binary(memoryview(b"mv"), [b_id])
    a.endpoint.broadcast_binary(bytearray(b"ba"))
    assert [ws.recv(PROMPTLY) for _ in range(4)] == [b"\x00\x01", b"text as bytes", b"mv", b"ba"]


def test_get_info_of_a_remote_client_is_a_client_info(start_node: Any) -> None:
    a, b = start_node(), start_node()
    ws, b_id = b.connect()
    ws.send("ping")  # echoed by the Recorder
    assert ws.recv(PROMPTLY) == "ping"
    info = a.endpoint.get_info(b_id)
    assert isinstance(info, ClientInfo)
    assert info.messages_read == 1
    assert info.messages_sent == 1
    assert info.remote_address.startswith("127.0.0.1")


def test_get_info_of_a_closed_remote_client_is_none(start_node: Any) -> None:
    a, b = start_node(), start_node()
    ws, b_id = b.connect()
    ws.close()
    b.recorder.wait_event("close")
    started = time.monotonic()
    assert a.endpoint.get_info(b_id) is None
    assert time.monotonic() - started < SECOND  # its node answered; no timeout


def test_rooms_of_a_remote_client_follow_its_joins_and_leaves(start_node: Any) -> None:
    a, b = start_node(), start_node()
    _, b_id = b.connect()
    a.endpoint.join(b_id, "x")
    a.endpoint.join(b_id, "y")
    wait_until(lambda: a.endpoint.rooms_of(b_id) == {"x", "y"})
    assert b.endpoint.rooms_of(b_id) == {"x", "y"}
    a.endpoint.leave(b_id, "x")
    wait_until(lambda: a.endpoint.rooms_of(b_id) == {"y"})
    assert a.endpoint.room_clients("x") == []
    assert a.endpoint.room_clients("y") == [b_id]


def test_malformed_messages_on_the_channel_are_ignored(redis_server: RedisServer, start_node: Any) -> None:
    a = start_node()
    ws, _ = a.connect()
    admin = redis_server.client()
    try:
        assert admin.publish(f"{CHANNEL}:all", b"garbage") == 1
        assert admin.publish(f"{CHANNEL}:all", b"SYA1\x00\x00\x00\x02[]") == 1
    finally:
        admin.close()
    with Publisher(redis_server.url, channel=CHANNEL) as publisher:
        assert publisher.broadcast("still listening") == 1
    assert ws.recv(PROMPTLY) == "still listening"
    assert a.backplane.up


def test_while_redis_is_down_remote_operations_fail_and_local_ones_work(
    redis_server: RedisServer, start_node: Any
) -> None:
    a, b = start_node(), start_node()
    ws, a_id = a.connect()
    a.connect()
    _, b_id = b.connect()
    wait_until(lambda: len(a.endpoint.get_clients()) == 3)

    redis_server.stop()
    a.recorder.wait_event("backplane_down")
    assert not a.backplane.up

    error = a.endpoint.send("x", b_id).exception(PROMPTLY)
    assert isinstance(error, BackplaneError)
    assert isinstance(error, ClientException)
    broadcast_error = a.endpoint.broadcast("local", except_ids=[a_id]).exception(PROMPTLY)
    assert isinstance(broadcast_error, BackplaneError)
    assert broadcast_error.local_result == BroadcastResult(delivered=1, failed=(), remote_nodes=0)
    multicast_error = a.endpoint.multicast("both", [a_id, b_id]).exception(PROMPTLY)
    assert isinstance(multicast_error, BackplaneError)
    assert multicast_error.local_result == BroadcastResult(delivered=1, failed=(), remote_nodes=0)
    assert ws.recv(PROMPTLY) == "both"

    assert published(a.endpoint.send("local send", a_id)) > 0
    assert ws.recv(PROMPTLY) == "local send"
    assert len(a.endpoint.get_clients()) == 2  # this process's clients only
    assert a.endpoint.room_clients("r") == []
    assert a.endpoint.rooms_of(b_id) == set()
    started = time.monotonic()
    assert a.endpoint.get_info(b_id) is None
    assert time.monotonic() - started < SECOND  # fails at once, no request timeout
    a.endpoint.close(b_id)  # no exception: close returns nothing


def test_hooks_fire_on_reconnection_but_not_on_the_first_connection(redis_server: RedisServer, start_node: Any) -> None:
    a = start_node()
    assert a.backplane.up
    assert "backplane_up" not in a.recorder.kinds()

    admin = redis_server.client()
    try:
        assert admin.client_kill_filter(_type="pubsub") == 1
    finally:
        admin.close()
    a.recorder.wait_for(
        lambda events: (
            [e for e in events if e[0].startswith("backplane")]
            == [
                ("backplane_down",),
                ("backplane_up",),
            ]
        )
    )


def test_a_node_started_while_redis_is_down_joins_the_cluster_when_it_comes_up(
    redis_server: RedisServer, start_node: Any
) -> None:
    redis_server.stop()
    late = start_node()
    ws, late_id = late.connect()
    assert not late.backplane.up
    assert late.endpoint.get_clients() == [late_id]  # local operations work
    assert isinstance(late.endpoint.broadcast("x").exception(PROMPTLY), BackplaneError)
    assert ws.recv(PROMPTLY) == "x"

    redis_server.start()
    wait_until(lambda: late.backplane.up, timeout=2 * PROMPTLY)
    other = start_node()
    _, other_id = other.connect()
    wait_until(lambda: sorted(other.endpoint.get_clients()) == sorted([late_id, other_id]))
    other.endpoint.send("welcome", late_id)
    assert ws.recv(PROMPTLY) == "welcome"
    assert late_id >> NODE_SHIFT == late.backplane.node != other.backplane.node


def test_a_stopped_node_removes_its_state_from_redis(redis_server: RedisServer) -> None:
    backplane = RedisBackplane(redis_server.url, channel=CHANNEL)
    recorder = Recorder()
    with serve(recorder, backplane=backplane) as server:
        with connect(url(server), open_timeout=PROMPTLY) as ws:
            client_id = recorder.wait_event("open")[1]
            recorder.endpoint.join(client_id, "r")
            ws.send("x")
            assert ws.recv(PROMPTLY) == "x"
            node = backplane.node
            admin = redis_server.client()
            keys = [f"{CHANNEL}:node:{node}", f"{CHANNEL}:clients:{node}", f"{CHANNEL}:rooms:{node}"]
            wait_until(lambda: admin.exists(*keys) == 3)
            assert admin.sismember(f"{CHANNEL}:nodes", node)
    try:
        assert admin.exists(*keys) == 0
        assert not admin.sismember(f"{CHANNEL}:nodes", node)
    finally:
        admin.close()


def test_one_backplane_serves_one_gateway() -> None:
    backplane = RedisBackplane("redis://127.0.0.1:1/0")  # never started: no connection
    syncaerys.websocket(Recorder(), backplane=backplane)
    with pytest.raises(ValueError, match="one gateway"):
        syncaerys.websocket(Recorder(), backplane=backplane)


@pytest.mark.parametrize(
    "options",
    [{"node_ttl": 0.5}, {"request_timeout": 0}, {"channel": ""}, {"channel": "has space"}],
    ids=["node_ttl", "request_timeout", "empty channel", "channel with a space"],
)
def test_bad_options_raise_value_error(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RedisBackplane("redis://127.0.0.1:1/0", **options)


class RefusingRedis:
    """A TCP listener that accepts and at once closes every connection, counting them (a Redis that fails)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.accepted: list[float] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.sock.accept()
                self.accepted.append(time.monotonic())
                connection.close()

    def close(self) -> None:
        self.sock.close()
        self._thread.join(PROMPTLY)


def test_the_listener_backs_off_while_redis_fails(start_node: Any) -> None:
    refusing = RefusingRedis()
    try:
        node = start_node(refusing.url, max_reconnect_delay=0.2)
        assert not node.backplane.up
        # Backoff 50, 100, 200, 200, ... ms: eight attempts take well over half a second (not a busy loop).
        wait_until(lambda: len(refusing.accepted) >= 8)
        assert refusing.accepted[7] - refusing.accepted[0] >= 0.6
    finally:
        refusing.close()


def test_a_node_started_after_redis_lost_its_data_does_not_reuse_a_live_node_number(
    redis_server: RedisServer, start_node: Any
) -> None:
    a = start_node(node_ttl=3.0)
    ws_a, a_id = a.connect()
    admin = redis_server.client()
    try:
        admin.flushall()  # as a Redis restarted empty, before a re-claims its number
    finally:
        admin.close()
    b = start_node(node_ttl=3.0)
    _, b_id = b.connect()
    assert b.backplane.node != a.backplane.node
    assert b_id >> NODE_SHIFT != a_id >> NODE_SHIFT
    # a's heartbeat claims its number again and rewrites its clients.
    wait_until(lambda: sorted(b.endpoint.get_clients()) == sorted([a_id, b_id]), timeout=2 * PROMPTLY)
    b.endpoint.broadcast("from b").result(PROMPTLY)
    assert ws_a.recv(PROMPTLY) == "from b"


def test_a_remote_send_to_a_client_that_is_not_open_fails_naming_it(start_node: Any) -> None:
    # Never seen, closed, or on a node that is gone: a failed future, not a 0.
    a, b = start_node(), start_node()
    ws, b_id = b.connect()
    # Announced to the cluster before on_open ran, so a send at once reaches it.
    assert published(a.endpoint.send("hello", b_id)) == 1
    assert ws.recv(PROMPTLY) == "hello"
    never_seen = b_id + 1000
    error = a.endpoint.send("x", never_seen).exception(PROMPTLY)
    assert isinstance(error, ClientException) and str(never_seen) in str(error)
    ws.close()
    b.recorder.wait_event("close")
    wait_until(lambda: b_id not in a.endpoint.get_clients())
    error = a.endpoint.send_binary(b"x", b_id).exception(PROMPTLY)
    assert isinstance(error, ClientException) and str(b_id) in str(error)
    no_node = (b.backplane.node + 77) << NODE_SHIFT | 1
    assert isinstance(a.endpoint.send("x", no_node).exception(PROMPTLY), ClientException)
    with pytest.raises(TypeError, match="int"):
        a.endpoint.send("x", str(b_id))
