"""Frames larger than a connection's read buffer, arriving in pieces (raw sockets), on both parse paths.

The rest of such a frame is read straight into one buffer of its size
(tests/test_memory.py pins the reads down); here: what comes out is right
whatever the pieces (binary, text with characters cut by the pieces, a
fragmented text message, a compressed message), invalid UTF-8 fails the
connection with 1007 before the rest of the frame is sent (Autobahn 6.4.x),
and a frame left half sent is closed with 1008 after ``message_timeout``.
Every test runs with the C frame parser and with the pure-Python one.
"""

from __future__ import annotations

import os
import random

import pytest
from websockets.sync.client import connect

from syncaerys.client.connection import BUFFER_SIZE
from tests.parse_paths import parse_path  # noqa: F401  (the fixture)
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import serve
from tests.utils import url

pytestmark = pytest.mark.usefixtures("parse_path")

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
LARGE = (1 << 20) + 3
NO_LIMITS = {"max_message_size": None, "max_frame_size": None, "max_bytes_per_minute": None, "heartbeat_period": None}


def send_in_pieces(client: RawClient, data: bytes, seed: int) -> None:
    """Send ``data`` in pieces of random sizes (each its own sendall)."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        size = rng.choice((1, 7, 100, BUFFER_SIZE - 1, BUFFER_SIZE + 1, 5000, 70000))
        client.send(data[pos : pos + size])
        pos += size


def recv_message(client: RawClient) -> tuple[int, bytes]:
    """The next whole message the server sends (it fragments large ones): (opcode, payload)."""
    opcode, fin, payload = client.recv_frame()
    while not fin:
        continuation, fin, more = client.recv_frame()
        assert continuation == OP_CONT
        payload += more
    return opcode, payload


def test_a_large_binary_frame_in_pieces_is_echoed_whole_and_the_next_frame_follows() -> None:
    payload = os.urandom(LARGE)
    with serve(Recorder(), **NO_LIMITS) as server, RawClient(server.port) as client:
        send_in_pieces(client, client_frame(OP_BINARY, payload) + client_frame(OP_BINARY, b"after"), seed=1)
        assert recv_message(client) == (OP_BINARY, payload)
        assert recv_message(client) == (OP_BINARY, b"after")


@pytest.mark.parametrize("seed", [2, 3])
def test_a_large_text_frame_cut_inside_characters_is_decoded_whole(seed: int) -> None:
    text = ("añ€😀" * (LARGE // 10))[: LARGE // 4]
    with serve(Recorder(), **NO_LIMITS) as server, RawClient(server.port) as client:
        send_in_pieces(client, client_frame(OP_TEXT, text.encode()), seed=seed)
        assert recv_message(client) == (OP_TEXT, text.encode())


def test_a_fragmented_text_message_of_large_frames_with_a_character_across_frames() -> None:
    encoded = ("x" * 5000 + "😀" + "y" * 70000).encode()
    cut = 5002  # inside the 4-byte character
    stream = client_frame(OP_TEXT, encoded[:cut], fin=False) + client_frame(OP_CONT, encoded[cut:])
    with serve(Recorder(), **NO_LIMITS) as server, RawClient(server.port) as client:
        send_in_pieces(client, stream, seed=4)
        assert recv_message(client) == (OP_TEXT, encoded)


def test_a_large_compressed_message_is_inflated() -> None:
    payload = os.urandom(LARGE // 2)  # incompressible: the compressed frame is as large
    with serve(Recorder(), compression=True, **NO_LIMITS) as server:
        with connect(url(server), compression="deflate", max_size=None, open_timeout=PROMPTLY) as ws:
            ws.send(payload)
            assert ws.recv(timeout=PROMPTLY) == payload


@pytest.mark.parametrize("bad_at", [10, 300_000])
def test_invalid_utf8_in_a_large_text_frame_fails_before_the_rest_is_sent(bad_at: int) -> None:
    encoded = bytearray(b"a" * LARGE)
    encoded[bad_at] = 0xFF
    frame = client_frame(OP_TEXT, bytes(encoded))
    recorder = Recorder()
    with serve(recorder, **NO_LIMITS) as server, RawClient(server.port) as client:
        # Up to a little past the bad byte; the rest of the frame never comes.
        send_in_pieces(client, frame[: bad_at + 14 + 1000], seed=5)
        assert client.recv_close() == (1007, "Invalid TEXT data; UTF-8 required")
        recorder.wait_event("close")
    assert not [event for event in recorder.events if event[0] == "data"]


def test_a_large_frame_left_half_sent_is_closed_after_message_timeout() -> None:
    frame = client_frame(OP_BINARY, os.urandom(LARGE))
    recorder = Recorder()
    with serve(recorder, message_timeout=0.5, **NO_LIMITS) as server, RawClient(server.port) as client:
        send_in_pieces(client, frame[: len(frame) // 2], seed=6)
        assert client.recv_close() == (1008, "Message not completed within message_timeout")
        code = recorder.wait_event("close")[2]
    assert code == 1008
