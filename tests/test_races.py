"""The benign races of Connection (its docstring, docs/architecture.md), hammered.

The timer thread's heartbeat reads the client thread's ``_waiting``,
``_waiting_since`` and ``_last_read_mono`` without a lock and reschedules
itself while the client's thread finishes and cancels it; a close deadline may
be set while the client finishes. With a heartbeat every few milliseconds, many
clients reading, writing, closing and dropping at once must still each get one
``on_close``, their messages intact, and no exception in any thread's log.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.sync.client import connect

from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url
from tests.utils import wait_until

CLIENTS = 16
MESSAGES = 150
ROUNDS = 8
# A ping every 2 ms for each client; no close for unanswered pings (the race under test is
# the heartbeat's reads, not the limit, which a loaded machine could reach legitimately).
HAMMER = {"heartbeat_period": 0.002, "queued_ping_limit": 1_000_000}


def closes(recorder: Recorder, count: int) -> list[tuple[object, ...]]:
    """The close events, once there are ``count`` of them."""
    found: list[tuple[object, ...]] = recorder.wait_for(
        lambda events: [e for e in events if e[0] == "close"] if sum(e[0] == "close" for e in events) >= count else None
    )
    return found


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("syncaerys")]


@pytest.mark.timeout(120)
def test_heartbeats_racing_reads_writes_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.INFO, logger="syncaerys"), serve(recorder, **HAMMER) as server:

        def chat(n: int) -> list[str]:
            with connect(url(server)) as ws:
                for i in range(MESSAGES):
                    ws.send(f"{n}:{i}")
                return [str(ws.recv(timeout=PROMPTLY)) for _ in range(MESSAGES)]

        with ThreadPoolExecutor(CLIENTS) as pool:
            echoed = list(pool.map(chat, range(CLIENTS)))
        assert echoed == [[f"{n}:{i}" for i in range(MESSAGES)] for n in range(CLIENTS)]
        closed = closes(recorder, CLIENTS)
        wait_until(lambda: server.gateways[0].connection_count() == 0)
    assert sorted(event[2] for event in closed) == [1000] * CLIENTS  # type: ignore[type-var]
    assert len({event[1] for event in closed}) == len(closed) == CLIENTS  # one on_close each
    assert errors(caplog) == []


@pytest.mark.timeout(120)
def test_heartbeats_racing_dropped_connections_and_server_closes(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.INFO, logger="syncaerys"), serve(recorder, **HAMMER) as server:
        for _ in range(ROUNDS):
            already = len(recorder.events)
            clients = [RawClient(server.port) for _ in range(CLIENTS)]
            ids = [event[1] for event in opened(recorder, already, CLIENTS)]
            start = threading.Barrier(2)
            threads = [
                threading.Thread(target=drop, args=(start, clients)),
                threading.Thread(target=close, args=(start, recorder, ids)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(PROMPTLY)
            wait_until(lambda: server.gateways[0].connection_count() == 0)
        closed = closes(recorder, ROUNDS * CLIENTS)
    ids = [event[1] for event in closed]
    assert len(ids) == len(set(ids)) == ROUNDS * CLIENTS  # exactly one on_close per client
    assert {event[2] for event in closed} <= {4000, 1006}
    assert errors(caplog) == []


def opened(recorder: Recorder, after: int, count: int) -> list[tuple[object, ...]]:
    """The ``count`` open events recorded after the first ``after`` events."""
    found: list[tuple[object, ...]] = recorder.wait_for(
        lambda events: o if len(o := [e for e in events[after:] if e[0] == "open"]) >= count else None
    )
    return found


def drop(start: threading.Barrier, clients: list[RawClient]) -> None:
    """Reset every client's TCP connection (SO_LINGER 0), as the other thread closes them."""
    start.wait()
    for client in clients:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()


def close(start: threading.Barrier, recorder: Recorder, ids: list[int]) -> None:
    """Close every client from the application's side, as the other thread resets them."""
    start.wait()
    for client_id in ids:
        recorder.endpoint.close(client_id, 4000, "racing")
