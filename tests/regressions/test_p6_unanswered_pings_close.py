"""P6: a client that never answers pings is closed, and its TCP connection dropped.

Probe P6 (simple-websocket, ``ping_interval=1``, a client that
never answers pings): closed with 1008 after 2 s, but then the P4 HTTP garbage
followed the close frame; and in P9 neither simple-websocket's nor
websockets' keepalive closed a peer that had stopped reading. simple-websocket
#33 (a blocked ``receive()`` not woken on a ping timeout) is the same path seen
from the handler (tests/regressions/test_sw18_sw33_no_hang_on_close.py).

Guarantee: after exactly ``queued_ping_limit`` unanswered pings (payloads
"1", "2", ...), the server sends a close 1008 "Exceeded unanswered PING limit"
and, if the peer does not answer that either (a dead peer), drops the TCP
connection after ``close_period``; ``on_close`` gets 1008 once. Pongs that did
come are counted (a peer that answered once gets one more ping), and data
the server keeps sending to the peer does not stand in for the missing pongs.
(tests/test_heartbeat.py has the peer that answers the close, the peer that
answers every ping and the busy handler that is not a dead peer.)
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.regressions.helpers import OP_BINARY
from tests.regressions.helpers import OP_CLOSE
from tests.regressions.helpers import OP_PING
from tests.regressions.helpers import OP_PONG
from tests.regressions.helpers import Frame
from tests.regressions.helpers import assert_no_errors
from tests.regressions.helpers import close_code_of
from tests.regressions.helpers import count_events
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve

LIMIT = 3
OPTIONS: dict[str, object] = {"heartbeat_period": 0.1, "queued_ping_limit": LIMIT, "close_period": 0.3}
CLOSE = (1008, "Exceeded unanswered PING limit")


def frames_until_close(client: RawClient, answer: int = 0) -> list[Frame]:
    """Every frame up to and including the close; the first ``answer`` pings get a pong."""
    frames: list[Frame] = []
    deadline = time.monotonic() + PROMPTLY
    while not frames or frames[-1][0] != OP_CLOSE:
        assert time.monotonic() < deadline, f"no close after {len(pings(frames))} pings"
        frames.append(client.recv_frame())
        opcode, _, payload = frames[-1]
        if opcode == OP_PING and answer > 0:
            client.send_frame(OP_PONG, payload)
            answer -= 1
    return frames


def pings(frames: list[Frame]) -> list[bytes]:
    return [payload for opcode, _, payload in frames if opcode == OP_PING]


def check_dropped_and_reported(client: RawClient, recorder: Recorder, frames: list[Frame]) -> None:
    assert close_code_of(frames[-1][2]) == CLOSE
    # A dead peer does not answer the close either: the server drops TCP by itself.
    assert client.recv_until_eof() == b""
    assert recorder.wait_event("close")[2:] == CLOSE


def test_peer_that_never_answers_pings_is_closed_1008_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    with serve(recorder, **OPTIONS) as server, RawClient(server.port) as client:
        frames = frames_until_close(client)
        assert [opcode for opcode, _, _ in frames[:-1]] == [OP_PING] * LIMIT
        assert pings(frames) == [b"1", b"2", b"3"]
        check_dropped_and_reported(client, recorder, frames)
    assert count_events(recorder, "close") == 1
    assert_no_errors(caplog)


def test_peer_that_stops_answering_gets_limit_more_pings_then_1008() -> None:
    recorder = Recorder()
    with serve(recorder, **OPTIONS) as server, RawClient(server.port) as client:
        frames = frames_until_close(client, answer=1)
        # Ping 1 was answered; 2, 3 and 4 were not.
        assert pings(frames) == [b"1", b"2", b"3", b"4"]
        check_dropped_and_reported(client, recorder, frames)
    assert count_events(recorder, "close") == 1


def test_data_sent_to_the_peer_does_not_stand_in_for_pongs() -> None:
    recorder = Recorder()
    stop = threading.Event()
    with serve(recorder, **OPTIONS) as server, RawClient(server.port) as client:
        client_id = recorder.wait_event("open")[1]

        def push() -> None:
            # The server keeps talking to a peer that reads everything but never pongs.
            number = 0
            while not stop.is_set() and client_id in recorder.endpoint.get_clients():
                recorder.endpoint.send(number.to_bytes(4, "big"), client_id)
                number += 1
                stop.wait(0.01)  # pacing the pushes, not synchronisation

        pusher = threading.Thread(target=push, name="pusher")
        pusher.start()
        try:
            frames = frames_until_close(client)
        finally:
            stop.set()
            pusher.join(PROMPTLY)
        data = [payload for opcode, _, payload in frames if opcode == OP_BINARY]
        assert len(data) >= 2 * LIMIT, "the pusher did not run during the heartbeat periods"
        assert data == [number.to_bytes(4, "big") for number in range(len(data))]
        assert pings(frames) == [b"1", b"2", b"3"]
        check_dropped_and_reported(client, recorder, frames)
    assert count_events(recorder, "close") == 1
