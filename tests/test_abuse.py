"""Abuse inside and around the WebSocket.

A peer that trickles a frame header, opens far more connections than allowed,
claims an absurd frame length, floods pings or tiny frames, or sends close
frames with bad codes or reasons. Each test says what must happen. Slowloris
during the HTTP handshake (silent and byte-a-second) is
tests/test_http.py::test_slowloris_loses_its_thread_within_header_timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

import syncaerys
from tests.regressions.helpers import OP_CLOSE
from tests.regressions.helpers import OP_CONT
from tests.regressions.helpers import OP_PING
from tests.regressions.helpers import OP_PONG
from tests.regressions.helpers import OP_TEXT
from tests.regressions.helpers import Frame
from tests.regressions.helpers import assert_no_errors
from tests.regressions.helpers import close_code_of
from tests.regressions.helpers import close_payload
from tests.regressions.helpers import count_events
from tests.regressions.helpers import nth_event
from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import SmallWindowClient
from tests.utils import client_frame
from tests.utils import serve
from tests.utils import url

NO_RATE_LIMITS: dict[str, object] = {"max_frames_per_second": None, "max_bytes_per_minute": None}


def recv_data_answering_pings(client: RawClient) -> Frame:
    """The next non-ping frame; pings on the way are answered, as clients do."""
    while True:
        frame = client.recv_frame()
        if frame[0] != OP_PING:
            return frame
        client.send_frame(OP_PONG, frame[2])


# -- slowloris inside the WebSocket


def test_frame_header_one_byte_a_second_is_closed_by_the_heartbeat(caplog: pytest.LogCaptureFixture) -> None:
    """A frame header trickled one byte a second.

    What happens: the client's thread waits in ``recv`` for the rest of the
    header, costing only that thread; other clients are served as usual. Each
    byte that arrives counts as having heard from the peer, so it restarts the
    idle timer, but it cannot carry a pong (no frame can start inside another
    frame's header), so the heartbeat's pings go unanswered. After
    ``queued_ping_limit`` of them the server closes with 1008 "Exceeded
    unanswered PING limit" and drops TCP ``close_period`` later, before the
    header is complete. With the default 10 s heartbeat and a limit of 3 that
    takes 30 to 40 s; here the period is 0.3 s.
    """
    recorder = Recorder()
    options = {"heartbeat_period": 0.3, "queued_ping_limit": 3, "close_period": 0.3}
    header = bytes((0x80 | OP_TEXT, 0x80 | 126)) + (1000).to_bytes(2, "big") + b"abcd"
    stop = threading.Event()
    pace = threading.Event()
    sent: list[int] = []
    with serve(recorder, **options) as server, RawClient(server.port) as slow:
        slow_id = recorder.wait_event("open")[1]

        def trickle() -> None:
            for byte in header:
                try:
                    slow.sock.send(bytes((byte,)))
                except OSError:
                    return
                sent.append(byte)
                if stop.wait(1.0):  # the slow pace under test, not synchronisation
                    return

        trickler = threading.Thread(target=trickle, name="trickler")
        trickler.start()
        try:
            with connect(url(server), open_timeout=PROMPTLY) as normal:
                # Served normally all the while the slow header trickles in.
                deadline = time.monotonic() + 3 * PROMPTLY
                number = 0
                while number < 10 or count_events(recorder, "close") == 0:
                    assert time.monotonic() < deadline, "the slow client was never closed"
                    normal.send(f"round trip {number}")
                    assert normal.recv(timeout=PROMPTLY) == f"round trip {number}"
                    number += 1
                    pace.wait(0.02)  # a steady trickle of round trips, not synchronisation
                frames: list[Frame] = []
                while not frames or frames[-1][0] != OP_CLOSE:
                    assert len(frames) < 10, frames
                    frames.append(slow.recv_frame())
                assert [frame[2] for frame in frames[:-1]] == [b"1", b"2", b"3"]
                assert all(frame[0] == OP_PING for frame in frames[:-1])
                assert close_code_of(frames[-1][2]) == (1008, "Exceeded unanswered PING limit")
                assert slow.recv_until_eof() == b""
                assert recorder.wait_event("close")[1:] == (slow_id, 1008, "Exceeded unanswered PING limit")
                assert 1 <= len(sent) < len(header)
                normal.send("after")
                assert normal.recv(timeout=PROMPTLY) == "after"
        finally:
            stop.set()
            trickler.join(PROMPTLY)
    assert_no_errors(caplog)


# -- connections past max_connections


def read_reply(sock: socket.socket) -> bytes:
    reply = b""
    try:
        while chunk := sock.recv(4096):  # bounded by the socket timeout
            reply += chunk
    except ConnectionResetError:
        pass  # the server closed with our request unread; what it wrote came first
    return reply


def test_connections_past_max_connections_get_503_and_no_thread() -> None:
    """20 clients are served; 300 more connections (with or without a request) each get a 503 and cost no thread."""
    recorder = Recorder()
    gateway = syncaerys.websocket(recorder)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(syncaerys.Server(gateway, host="127.0.0.1", port=0, max_connections=20))
        clients: list[ClientConnection] = [
            stack.enter_context(connect(url(server), open_timeout=PROMPTLY)) for _ in range(20)
        ]
        nth_event(recorder, "open", 19)
        threads = threading.active_count()
        request = (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        replies: dict[bytes, int] = {}
        most_threads = threads
        for number in range(300):
            with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY) as sock:
                if number % 2:
                    sock.sendall(request)
                reply = read_reply(sock)
            status_line = reply.split(b"\r\n", 1)[0]
            replies[status_line] = replies.get(status_line, 0) + 1
            most_threads = max(most_threads, threading.active_count())
        assert replies == {b"HTTP/1.1 503 Service Unavailable": 300}
        assert most_threads == threads, "a refused connection got a thread"
        assert server.connection_count() == 20
        # The 20 were never disturbed.
        for number, ws in enumerate(clients):
            ws.send(f"still served {number}")
            assert ws.recv(timeout=PROMPTLY) == f"still served {number}"
        assert recorder.kinds().count("open") == 20
        assert "close" not in recorder.kinds()


# -- length claims


@pytest.mark.parametrize(
    ("length", "code"),
    [(2**31, 1009), (2**62, 1009), (2**63, 1002), (2**64 - 1, 1002)],
    ids=["2^31", "2^62", "2^63", "2^64-1"],
)
def test_64bit_length_claim_is_refused_from_the_header(length: int, code: int) -> None:
    """Only the header and mask key are sent: the claim alone decides (1009 over the limit, 1002 with the MSB set)."""
    recorder = Recorder()
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send(bytes((0x82, 0xFF)) + length.to_bytes(8, "big") + b"abcd")
        assert client.recv_close()[0] == code
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2] == code
    assert "data" not in recorder.kinds()


# -- ping floods


def ping_flood(count: int) -> bytes:
    return b"".join(client_frame(OP_PING, str(number).encode()) for number in range(count))


def test_ping_flood_is_answered_in_order_and_the_connection_stays_usable() -> None:
    recorder = Recorder()
    count = 5000
    with serve(recorder, **NO_RATE_LIMITS) as server, RawClient(server.port) as client:
        client.send(ping_flood(count))
        for number in range(count):
            assert client.recv_frame() == (OP_PONG, True, str(number).encode())
        client.send_frame(OP_TEXT, b"after the flood")
        assert client.recv_frame() == (OP_TEXT, True, b"after the flood")
        assert "close" not in recorder.kinds()


def test_ping_flood_is_throttled_by_max_frames_per_second_never_closed() -> None:
    recorder = Recorder()
    rate = 1000
    count = 2 * rate
    with serve(recorder, max_frames_per_second=rate, heartbeat_period=None) as server, RawClient(server.port) as client:
        client.send(ping_flood(count))
        started = time.monotonic()
        for number in range(count):
            assert client.recv_frame() == (OP_PONG, True, str(number).encode())
        elapsed = time.monotonic() - started
        # A burst of `rate`, then `rate` a second: about 1 s for the second half.
        assert elapsed >= 0.5, f"{count} pings answered in {elapsed:.3f}s despite max_frames_per_second={rate}"
        client.send_frame(OP_TEXT, b"after the flood")
        assert client.recv_frame() == (OP_TEXT, True, b"after the flood")
        assert "close" not in recorder.kinds()


def test_ping_flood_from_a_peer_that_reads_nothing_is_bounded_by_max_send_queue() -> None:
    """Pongs that cannot be written count against ``max_send_queue`` like any other queued frame.

    The peer floods pings and never reads its pongs. The server must not queue
    pongs without bound: either it closes the peer with 1008 "Send queue limit
    exceeded" once the queue passes the limit (``max_send_queue``), or it stops reading
    the peer (TCP backpressure). Either way the queue stays near the limit.
    """
    recorder = Recorder()
    limit = 256 * 1024
    chunk = client_frame(OP_PING, b"p" * 125) * 1000
    stop = threading.Event()
    outcome: list[object] = []
    with (
        serve(recorder, max_send_queue=limit, heartbeat_period=None, close_period=0.5, **NO_RATE_LIMITS) as server,
        SmallWindowClient(server.port) as client,
    ):
        client_id = recorder.wait_event("open")[1]

        def flood() -> None:
            try:
                for _ in range(80):  # 80,000 pings, 10 MiB of pongs
                    if stop.is_set():
                        break
                    client.sock.sendall(chunk)
                outcome.append("sent all")
            except OSError as error:  # closed by the server, or blocked by backpressure (timeout)
                outcome.append(error)

        flooder = threading.Thread(target=flood, name="ping-flooder")
        flooder.start()
        peak = 0
        try:
            while flooder.is_alive():
                info = recorder.endpoint.get_info(client_id)
                if info is None:
                    break
                peak = max(peak, info.send_queue_bytes)
                assert peak <= limit + 256 * 1024, f"{peak} bytes of pongs queued, max_send_queue is {limit}"
                flooder.join(0.01)  # sampling the queue while the flood runs
        finally:
            stop.set()
            flooder.join(2 * PROMPTLY)
        closes = [e for e in recorder.events if e[0] == "close"]
        if closes:
            assert closes[0][1:] == (client_id, 1008, "Send queue limit exceeded")


# -- tiny frames


def test_tiny_frame_flood_pauses_reading_and_never_closes() -> None:
    """1000 one-byte fragments of one message at max_frames_per_second=500: delayed, delivered whole, still open."""
    recorder = Recorder()
    rate = 500
    count = 2 * rate
    text = "".join(chr(ord("a") + number % 26) for number in range(count))
    stream = client_frame(OP_TEXT, text[0].encode(), fin=False)
    stream += b"".join(client_frame(OP_CONT, char.encode(), fin=False) for char in text[1:-1])
    stream += client_frame(OP_CONT, text[-1].encode(), fin=True)
    options = {"max_frames_per_second": rate, "heartbeat_period": 0.1, "queued_ping_limit": 2}
    with serve(recorder, **options) as server, RawClient(server.port) as client:
        client_id = recorder.wait_event("open")[1]
        started = time.monotonic()
        client.send(stream)
        assert recv_data_answering_pings(client) == (OP_TEXT, True, text.encode())
        elapsed = time.monotonic() - started
        assert elapsed >= 0.5, f"{count} frames read in {elapsed:.3f}s despite max_frames_per_second={rate}"
        client.send_frame(OP_TEXT, b"after")
        assert recv_data_answering_pings(client) == (OP_TEXT, True, b"after")
        info = recorder.endpoint.get_info(client_id)
        assert info is not None
        assert info.frames_read >= count + 1
        assert client_id in recorder.endpoint.get_clients()
        assert "close" not in recorder.kinds()
    assert elapsed < 10 * SECOND


# -- bad close frames


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_close_with_a_bad_code_is_answered_1002(code: int) -> None:
    recorder = Recorder()
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_CLOSE, close_payload(code, b"why"))
        assert client.recv_close() == (1002, "Invalid close code")
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2:] == (1002, "Invalid close code")
    assert count_events(recorder, "close") == 1


@pytest.mark.parametrize("reason", [b"\xff", b"\xc3\x28", b"ok \xed\xa0\x80", b"cut \xe2\x82"])
def test_close_with_an_invalid_utf8_reason_is_answered_1007(reason: bytes) -> None:
    recorder = Recorder()
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_CLOSE, close_payload(1000, reason))
        assert client.recv_close() == (1007, "Close reason must be valid UTF-8")
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2:] == (1007, "Close reason must be valid UTF-8")


def test_one_byte_close_payload_is_answered_1002() -> None:
    recorder = Recorder()
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_CLOSE, b"\x03")
        assert client.recv_close() == (1002, "Close code must be two bytes")
        assert recorder.wait_event("close")[2] == 1002
