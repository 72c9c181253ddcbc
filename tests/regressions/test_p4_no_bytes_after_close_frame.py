"""P4: nothing is written on the socket after the close frame, on any host server.

Probe P4 and P5/P6 (flask-sock on werkzeug's dev server; also
flask-sock #52/#70 and simple-websocket #42). After the close frame, whether
the client closed, the server closed, the server failed the connection on
invalid UTF-8 or the ping timeout fired, werkzeug wrote its own
``HTTP/1.1 200 OK ...`` response onto the WebSocket stream, e.g.
``b"\\x88\\x05\\x03\\xe8byeHTTP/1.1 200 OK\\r\\n..."``; browsers then report an
invalid frame and 1006 instead of the real code.

Guarantee: on werkzeug's threaded dev server and on syncaerys's own server,
for a client close, a server close (``endpoint.close`` from a handler), a
protocol error (invalid UTF-8, 1007) and a heartbeat timeout (the client
never answers pings; it answers the close, or, as a dead peer, not even that
and the server drops TCP after ``close_period``), everything the client reads after the 101 up to EOF parses
as whole WebSocket frames, the last of them is the close frame with the
expected code, and nothing (no HTTP bytes) follows it; ``on_close`` gets the
same code once and nothing is logged as an error. (tests/test_werkzeug.py and
tests/test_flask.py check single paths; this is the full matrix, checked on the
raw byte stream.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from syncaerys import Message
from tests.regressions.helpers import HOSTS
from tests.regressions.helpers import OP_CLOSE
from tests.regressions.helpers import OP_PING
from tests.regressions.helpers import OP_TEXT
from tests.regressions.helpers import Frame
from tests.regressions.helpers import assert_no_errors
from tests.regressions.helpers import close_code_of
from tests.regressions.helpers import close_payload
from tests.regressions.helpers import count_events
from tests.regressions.helpers import parse_server_frames
from tests.utils import RawClient
from tests.utils import Recorder


def echo_or_close(rec: Recorder, client_id: int, message: Message) -> None:
    data = message.result()
    if data == "close me":
        rec.endpoint.close(client_id, 4000, "go away")
    else:
        rec.endpoint.send(data, client_id)


def client_close(client: RawClient) -> list[Frame]:
    client.send_frame(OP_TEXT, b"hi")
    client.send_frame(OP_CLOSE, close_payload(1000, b"bye"))
    return []


def server_close(client: RawClient) -> list[Frame]:
    client.send_frame(OP_TEXT, b"hi")
    client.send_frame(OP_TEXT, b"close me")
    frames = [client.recv_frame(), client.recv_frame()]
    assert frames[-1][0] == OP_CLOSE, frames
    client.send_frame(OP_CLOSE, frames[-1][2])  # answer the server's close
    return frames


def invalid_utf8(client: RawClient) -> list[Frame]:
    client.send_frame(OP_TEXT, b"hi")
    client.send_frame(OP_TEXT, b"\xc3\x28 invalid")
    return []


def heartbeat_timeout(client: RawClient) -> list[Frame]:
    # Pings go unanswered; the server's close is answered.
    frames = [client.recv_frame()]
    while frames[-1][0] == OP_PING:
        frames.append(client.recv_frame())
    assert frames[-1][0] == OP_CLOSE, frames
    client.send_frame(OP_CLOSE, frames[-1][2])
    return frames


def heartbeat_timeout_dead_peer(client: RawClient) -> list[Frame]:
    return []  # never answer anything: the server drops TCP after close_period


PING_LIMIT = (1008, "Exceeded unanswered PING limit")
HEARTBEAT: dict[str, object] = {"heartbeat_period": 0.05, "queued_ping_limit": 2, "close_period": 0.3}

#: How the connection ends (returns the frames it read), the options it needs,
#: the close code and reason, and the data frames before the close.
CASES: dict[str, tuple[Callable[[RawClient], list[Frame]], dict[str, object], tuple[int, str], list[bytes]]] = {
    "client-close": (client_close, {}, (1000, "bye"), [b"hi"]),
    "server-close": (server_close, {}, (4000, "go away"), [b"hi"]),
    "invalid-utf8": (invalid_utf8, {}, (1007, "Invalid TEXT data; UTF-8 required"), [b"hi"]),
    "heartbeat-timeout": (heartbeat_timeout, HEARTBEAT, PING_LIMIT, []),
    "heartbeat-timeout-dead-peer": (heartbeat_timeout_dead_peer, HEARTBEAT, PING_LIMIT, []),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("host", sorted(HOSTS))
def test_no_bytes_after_close_frame(host: str, case: str, caplog: pytest.LogCaptureFixture) -> None:
    run, options, expected, data = CASES[case]
    recorder = Recorder(on_data=echo_or_close)
    with HOSTS[host](recorder, **options) as port, RawClient(port) as client:
        assert client.status == 101
        frames = run(client)
        stream = client.recv_until_eof()
        frames += parse_server_frames(stream)
        assert frames, "no close frame before EOF"
        opcode, fin, payload = frames[-1]
        assert (opcode, fin) == (OP_CLOSE, True), f"last thing on the wire is not the close frame: {stream[-80:]!r}"
        assert close_code_of(payload) == expected
        # Before the close: the echoes, and heartbeat pings; nothing else.
        assert [p for op, _, p in frames[:-1] if op == OP_TEXT] == data
        assert all(op in (OP_TEXT, OP_PING) for op, _, _ in frames[:-1]), frames
        assert recorder.wait_event("close")[2:] == expected
    assert count_events(recorder, "close") == 1
    assert_no_errors(caplog)
