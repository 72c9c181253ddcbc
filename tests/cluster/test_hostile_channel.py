"""Whoever can PUBLISH on the backplane's channels can neither stop a node nor break RFC 6455 on its clients.

Each malformed message is published raw on the channel a node listens to,
then a well-formed broadcast: it must still arrive (the listener thread
lived), alone (nothing malformed was applied), the client must be open, and
the node counts and logs what it dropped (one line per interval, not one per
message).
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import syncaerys
from syncaerys import Publisher
from syncaerys import RedisBackplane
from tests.cluster.helpers import RedisServer
from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url
from tests.utils import wait_until

CHANNEL = "hostile-channel"


def raw(header: str | bytes, payload: bytes = b"") -> bytes:
    head = header.encode() if isinstance(header, str) else header
    return b"SYA1" + struct.pack(">I", len(head)) + head + payload


def hostile_messages(client_id: int) -> dict[str, bytes]:
    """What another app on the same Redis (or a compromised worker) might publish."""
    target = json.dumps([client_id])
    return {
        "origin 1e400 (OverflowError)": raw('{"k":"broadcast","o":1e400}', b"x"),
        "nested 100,000 deep (RecursionError)": raw('{"k":"broadcast","a":' + "[" * 100_000 + "]" * 100_000 + "}"),
        "origin NaN": raw('{"k":"broadcast","o":NaN}', b"x"),
        "ids of 5,000 digits": raw('{"k":"send","ids":[' + "9" * 5000 + "]}", b"x"),
        "close code 70000 (zombie)": raw(f'{{"k":"close","ids":{target},"c":70000}}'),
        "close code 1006 (forbidden on the wire)": raw(f'{{"k":"close","ids":{target},"c":1006}}'),
        "close reason of 300 bytes": raw(f'{{"k":"close","ids":{target},"c":4000,"why":"{"r" * 300}"}}'),
        "close reason a lone surrogate": raw(f'{{"k":"close","ids":{target},"c":4000,"why":"\\ud800"}}'),
        "text broadcast not UTF-8 (1007 for everyone)": raw('{"k":"broadcast"}', b"\xff\xfe"),
        "text send not UTF-8": raw(f'{{"k":"send","ids":{target}}}', b"caf\xe9"),
        "join a room that is not Unicode": raw(f'{{"k":"join","ids":{target},"r":"\\udcff"}}'),
        "ids a float": raw(f'{{"k":"send","ids":[{client_id}.0]}}', b"x"),
        "origin true": raw('{"k":"broadcast","o":true}', b"x"),
        "info without origin": raw(f'{{"k":"info","ids":{target},"q":"abc"}}'),
        "info reply with a list": raw('{"k":"info_reply","q":"abc","a":[1]}'),
        "header a number": raw("5"),
        "not SYA1 at all": b"hello",
    }


class HookRecorder(Recorder):
    """Records the backplane hooks too."""

    def on_backplane_down(self) -> None:
        self.record("backplane_down")

    def on_backplane_up(self) -> None:
        self.record("backplane_up")


@pytest.fixture
def node(redis_server: RedisServer) -> Iterator[tuple[syncaerys.Server, Recorder, RedisBackplane]]:
    backplane = RedisBackplane(redis_server.url, channel=CHANNEL, request_timeout=SECOND, max_reconnect_delay=0.2)
    recorder = HookRecorder()
    with serve(recorder, backplane=backplane) as server:
        yield server, recorder, backplane


@pytest.mark.timeout(60)
def test_malformed_messages_are_dropped_counted_and_logged_once(
    redis_server: RedisServer,
    node: tuple[syncaerys.Server, Recorder, RedisBackplane],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, recorder, backplane = node
    caplog.set_level(logging.WARNING, logger="syncaerys.backplane")
    with contextlib.closing(redis_server.client()) as client, connect(url(server)) as ws:
        _, client_id, _ = recorder.wait_event("open")
        hostile = hostile_messages(client_id)
        for data in hostile.values():
            for channel in (f"{CHANNEL}:all", f"{CHANNEL}:to:{backplane.node}"):
                assert client.publish(channel, data) == 1
        with Publisher(redis_server.url, channel=CHANNEL) as publisher:
            assert publisher.broadcast("still listening") == 1
            # The first message the client gets is the well-formed one: nothing malformed reached it.
            assert ws.recv(PROMPTLY) == "still listening"
            assert publisher.send("and sending", client_id) == 1
            assert ws.recv(PROMPTLY) == "and sending"
            assert publisher.close(client_id, 4000, "by the book") == 1
        with pytest.raises(ConnectionClosed):
            ws.recv(PROMPTLY)
        assert (ws.close_code, ws.close_reason) == (4000, "by the book")
    assert backplane.malformed_messages == 2 * len(hostile)
    assert backplane.up
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "dropped a malformed message on hostile-channel:" in lines[0]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.timeout(60)
def test_redis_refusing_writes_is_not_a_disconnect(
    redis_server: RedisServer,
    node: tuple[syncaerys.Server, Recorder, RedisBackplane],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis at maxmemory with noeviction refuses the state writes (OOM error replies) but still publishes.

    Before: each refused write was taken for a lost connection, resubscribing
    succeeded, and the backoff restarted at 50 ms: 65 down/up cycles in 15 s,
    and every broadcast failed with BackplaneError half of the time.
    """
    server, recorder, backplane = node
    caplog.set_level(logging.WARNING, logger="syncaerys.backplane")
    with contextlib.closing(redis_server.client()) as client, connect(url(server)) as ws:
        _, client_id, _ = recorder.wait_event("open")
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)
        try:
            for number in range(30):
                # Each join is a state write that Redis refuses; each broadcast a PUBLISH it accepts.
                recorder.endpoint.join(client_id, f"room {number}")
                assert recorder.endpoint.broadcast(f"broadcast {number}").result(PROMPTLY).remote_nodes == 0
                assert ws.recv(PROMPTLY) == f"broadcast {number}"
            wait_until(lambda: backplane.redis_errors > 0)
            assert backplane.up
            with Publisher(redis_server.url, channel=CHANNEL) as publisher:
                assert publisher.broadcast("from a publisher") == 1
                assert ws.recv(PROMPTLY) == "from a publisher"
        finally:
            client.config_set("maxmemory", 0)
        # Once Redis takes writes again, the state is written (with the backoff's delay at most).
        wait_until(lambda: client.hexists(f"{CHANNEL}:clients:{backplane.node}", str(client_id)))
        wait_until(lambda: client.hget(f"{CHANNEL}:rooms:{backplane.node}", "room 29") is not None)
    assert "backplane_down" not in recorder.kinds() and "backplane_up" not in recorder.kinds()
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "lost Redis" in m or "reconnected" in m], messages
    refused = [m for m in messages if "refused" in m and "still connected" in m]
    assert len(refused) == 1, messages  # one line per LOG_INTERVAL, not one per refused write
    assert "command not allowed when used memory > 'maxmemory'" in refused[0]
    assert len([m for m in messages if "accepts writes again" in m]) == 1, messages


@pytest.mark.timeout(60)
def test_a_subscription_that_keeps_dropping_backs_off(
    redis_server: RedisServer, node: tuple[syncaerys.Server, Recorder, RedisBackplane]
) -> None:
    """Before: the backoff started over at 50 ms after each successful resubscription, so a link that
    dropped right after each one flapped at ~16 cycles a second; it now starts over only after STABLE_AFTER."""
    backplane = node[2]
    killed = 0
    stop = threading.Event()

    def kill_subscriptions() -> None:
        nonlocal killed
        with contextlib.closing(redis_server.client()) as client:
            while not stop.wait(0.01):
                killed += int(client.client_kill_filter(_type="pubsub") or 0)

    killer = threading.Thread(target=kill_subscriptions, daemon=True)
    started = time.monotonic()
    killer.start()
    try:
        wait_until(lambda: time.monotonic() - started >= 2.0 or killed >= 40, timeout=PROMPTLY)
    finally:
        stop.set()
        killer.join(PROMPTLY)
    # max_reconnect_delay is 0.2 s: 50, 100, 200, 200, ... ms, about ten subscriptions in 2 s.
    assert 3 <= killed <= 16, killed
    wait_until(lambda: backplane.up)
