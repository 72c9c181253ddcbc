"""A message (or a frame) must arrive whole within ``message_timeout`` of its first byte.

Before, each byte counted as activity and nothing bounded how long a message
could take: with permessage-deflate, a first frame of ~2 KiB inflating to
~2 MiB and then one byte of the next frame every few seconds pinned the
inflated data for as long as the client trickled (200 such clients: 460 MiB
of RSS for 442 KiB on the wire). The pacing below is the attack itself (a
byte every 50 ms), not synchronisation: every wait is on the socket, bounded.
"""

from __future__ import annotations

import logging
import select
import socket
import time
import zlib

import pytest

from syncaerys import OptionError
from syncaerys import websocket
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import serve

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
TIMEOUT = 1.0


def trickle(client: RawClient, data: bytes, within: float) -> float:
    """Send ``data`` a byte every 50 ms until the server writes something; how long that took."""
    started = time.monotonic()
    for byte in data:
        try:
            client.send(bytes([byte]))
        except OSError:
            break
        readable, _, _ = select.select([client.sock], [], [], 0.05)
        if readable:
            break
        assert time.monotonic() - started < within, "the server let the message trickle on"
    return time.monotonic() - started


def test_a_compressed_message_trickled_after_a_large_first_frame_is_closed_1008() -> None:
    recorder = Recorder()
    with serve(recorder, compression=True, message_timeout=TIMEOUT, heartbeat_period=None) as server:
        client = RawClient(server.port, headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        first = compressor.compress(b"a" * 1_500_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert len(first) < 4096  # ~1.5 MB inflated (under max_message_size) for a few KiB on the wire
        client.send_frame(OP_TEXT, first[:-4], fin=False, rsv=4)
        elapsed = trickle(client, client_frame(OP_CONT, b"b" * 200), within=TIMEOUT + PROMPTLY)
        assert elapsed >= TIMEOUT * 0.9
        assert client.recv_close() == (1008, "Message not completed within message_timeout")
        assert recorder.wait_event("close")[2] == 1008
        client.close()


def test_one_frame_trickled_byte_by_byte_is_closed_1008() -> None:
    recorder = Recorder()
    with serve(recorder, message_timeout=TIMEOUT, heartbeat_period=None) as server, RawClient(server.port) as client:
        trickle(client, client_frame(OP_BINARY, b"x" * 1000), within=TIMEOUT + PROMPTLY)
        assert client.recv_close()[0] == 1008


def test_the_deadline_is_per_message_not_per_connection() -> None:
    """Back-to-back fragmented messages, each well within the deadline, for longer than it in all."""
    recorder = Recorder()
    with serve(recorder, message_timeout=TIMEOUT, heartbeat_period=None) as server, RawClient(server.port) as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        texts = [f"message {number}".encode() for number in range(100)]
        client.send(client_frame(OP_TEXT, texts[0][:3], fin=False))
        number = 0
        while time.monotonic() - started < 2.5 * TIMEOUT:
            readable, _, _ = select.select([client.sock], [], [], TIMEOUT / 3)
            assert not readable, "the server wrote before the message was whole"
            # Each message's tail arrives with the next one's head, in one write.
            tail = client_frame(OP_CONT, texts[number][3:])
            client.send(tail + client_frame(OP_TEXT, texts[number + 1][:3], fin=False))
            opcode, _, payload = client.recv_frame()
            assert (opcode, payload) == (OP_TEXT, texts[number])
            number += 1
        assert number >= 5
        assert "close" not in recorder.kinds()


@pytest.mark.parametrize("value", [0, -1.0, "60", True])
def test_message_timeout_is_validated(value: object) -> None:
    with pytest.raises(OptionError, match="message_timeout"):
        websocket(Recorder(), message_timeout=value)  # type: ignore[arg-type]


def test_message_timeout_none_turns_it_off() -> None:
    websocket(Recorder(), message_timeout=None)


def test_a_handler_waiting_for_the_message_is_not_blamed_for_the_closing_handshake(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler waits in message.result(), which reads: the peer that does not answer the close is at fault."""
    caplog.set_level(logging.INFO, logger="syncaerys")
    recorder = Recorder()
    with serve(recorder, message_timeout=TIMEOUT, close_period=0.5, heartbeat_period=None) as server:
        with RawClient(server.port) as client:
            client.send_frame(OP_TEXT, b"first half", fin=False)
            assert client.recv_close()[0] == 1008
            # No close frame back, TCP left open: the close_period deadline drops it.
            assert client.recv_until_eof() == b""
        recorder.wait_event("close")
    messages = [r.getMessage() for r in caplog.records]
    assert any("no close frame from the peer within close_period" in m for m in messages), messages
    assert not any("blocked in your code" in m for m in messages), messages
