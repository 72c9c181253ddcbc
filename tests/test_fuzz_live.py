"""Fuzzing a live server: random and mutated frames, random garbage.

The sans-I/O parser is fuzzed on its own in tests/protocol/test_parser.py;
here the same kind of input goes through real sockets into a running server.
Each connection sends its bytes after the handshake, half-closes, and reads
everything the server writes until EOF, with a bounded socket timeout. The
oracle is syncaerys's own sans-I/O parser fed the same bytes, which says what
the server must do, and the byte stream must show exactly that:

* a protocol violation: a close frame with its 1002/1007/1009 code, then EOF;
* a valid close frame from the peer: that close echoed (1005 as an empty one), then EOF;
* neither: no close frame; EOF once the server has read our half-close (1006);
* before that, every complete message echoed in order and every ping answered
  with a pong carrying its payload, in order; nothing else, nothing after.

The server never hangs (every read is bounded), logs no error, still serves a
normal client afterwards, and leaves no thread or descriptor behind.
"""

from __future__ import annotations

import os
import random
import re
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from syncaerys.exceptions import ProtocolError
from syncaerys.protocol.parser import FrameParser
from tests.regressions.helpers import OP_BINARY
from tests.regressions.helpers import OP_CLOSE
from tests.regressions.helpers import OP_CONT
from tests.regressions.helpers import OP_PING
from tests.regressions.helpers import OP_PONG
from tests.regressions.helpers import OP_TEXT
from tests.regressions.helpers import ResourceBaseline
from tests.regressions.helpers import assert_no_errors
from tests.regressions.helpers import parse_server_frames
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url

MAX_FRAME = 4096
MAX_MESSAGE = 8192
OPTIONS: dict[str, object] = {
    "max_frame_size": MAX_FRAME,
    "max_message_size": MAX_MESSAGE,
    # Rate limits would only slow the run down; the heartbeat plays no part.
    "max_frames_per_second": None,
    "max_bytes_per_minute": None,
    "heartbeat_period": None,
}
MUTATED_CONNECTIONS = 150
GARBAGE_CONNECTIONS = 50

LIVE_FUZZ = settings(
    max_examples=MUTATED_CONNECTIONS,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the oracle


@dataclass
class Expected:
    """What the server must write for a given input stream."""

    messages: list[tuple[int, bytes]] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    #: ("error", code), ("close", payload echoed) or ("eof", None).
    end: tuple[str, object] = ("eof", None)


def expected_for(stream: bytes) -> Expected:
    expected = Expected()
    parser = FrameParser(MAX_FRAME, MAX_MESSAGE)
    parser.feed(stream)
    opcode = 0
    parts: list[bytes] = []
    try:
        while (frame := parser.next_frame()) is not None:
            if frame.opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                if frame.opcode != OP_CONT:
                    opcode, parts = frame.opcode, []
                data = frame.data
                parts.append(data.encode() if isinstance(data, str) else data)
                if frame.fin:
                    expected.messages.append((opcode, b"".join(parts)))
            elif frame.opcode == OP_PING:
                assert isinstance(frame.data, bytes)
                expected.pongs.append(frame.data)
            elif frame.opcode == OP_CLOSE:
                assert isinstance(frame.data, str)
                echo = b"" if frame.code == 1005 else frame.code.to_bytes(2, "big") + frame.data.encode()
                expected.end = ("close", echo)
                return expected
    except ProtocolError as error:
        assert error.code in (1002, 1007, 1009), error
        expected.end = ("error", error.code)
    return expected


def check_connection(port: int, stream: bytes) -> None:
    """Send ``stream`` after the handshake, half-close, and check what comes back against the oracle."""
    expected = expected_for(stream)
    with RawClient(port) as client:
        assert client.status == 101
        client.sock.sendall(stream)
        client.sock.shutdown(socket.SHUT_WR)
        # Bounded: the socket has a timeout, so a hang is a TimeoutError here.
        frames = parse_server_frames(client.recv_until_eof())
    context = f"stream {stream.hex()}, expected {expected}, got {frames}"
    closes = [payload for opcode, _, payload in frames if opcode == OP_CLOSE]
    kind, value = expected.end
    if kind == "eof":
        assert closes == [], context
    else:
        assert len(closes) == 1, context
        assert frames[-1][0] == OP_CLOSE, f"something after the close frame: {context}"
        if kind == "error":
            assert int.from_bytes(closes[0][:2], "big") == value, context
        else:
            assert closes[0] == value, context
    assert [(opcode, payload) for opcode, _, payload in frames if opcode in (OP_TEXT, OP_BINARY)] == (
        expected.messages
    ), context
    assert [payload for opcode, _, payload in frames if opcode == OP_PONG] == expected.pongs, context
    assert all(fin for _, fin, _ in frames), context
    assert {opcode for opcode, _, _ in frames} <= {OP_TEXT, OP_BINARY, OP_PONG, OP_CLOSE}, context


# -- inputs


def encode(opcode: int, payload: bytes, *, fin: bool, rsv: int, masked: bool, length_form: int, key: bytes) -> bytes:
    """A frame with every field chosen by the caller (including non-minimal length forms)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if masked else 0
    length = len(payload)
    if length_form == 0 and length < 126:
        header = bytes((first, mask_bit | length))
    elif length_form <= 1 and length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return header + payload
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@st.composite
def payloads(draw: st.DrawFn, opcode: int) -> bytes:
    if opcode == OP_CLOSE:
        valid = st.sampled_from([1000, 1001, 1011, 3000, 4000, 4999])
        invalid = st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
        code = draw(st.one_of(valid, valid, invalid))
        reason = draw(st.sampled_from([b"", b"bye", "caf\u00e9".encode(), b"r" * 123, b"\xc3\x28"]))
        return draw(st.sampled_from([b"", b"\x03", *[code.to_bytes(2, "big") + reason] * 4]))
    if opcode in (OP_TEXT, OP_CONT) and draw(st.booleans()):
        text: str = draw(st.text(max_size=60))
        return text.encode()
    return draw(st.binary(max_size=200))


@st.composite
def bad_frames(draw: st.DrawFn) -> bytes:
    """A frame with any opcode and flags, often breaking a rule."""
    opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_CLOSE]) | st.integers(0, 15))
    payload = draw(payloads(opcode))
    if draw(st.integers(0, 4)) == 0:
        payload = payload + bytes(draw(st.integers(MAX_FRAME - len(payload) - 8, MAX_FRAME + 8)))
    return encode(
        opcode,
        payload,
        fin=draw(st.booleans()),
        rsv=draw(st.sampled_from([0, 0, 1, 2, 4, 7])),
        masked=draw(st.booleans()),
        length_form=draw(st.sampled_from([0, 1, 2])),
        key=draw(st.binary(min_size=4, max_size=4)),
    )


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A well-formed data message, often fragmented (at any byte, even inside a character), pings between."""
    opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY]))
    data = draw(payloads(opcode))
    if opcode == OP_TEXT and draw(st.integers(0, 9)) == 0:
        data += b"\xed\xa0\x80"  # an encoded surrogate: invalid UTF-8
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=3))
    if draw(st.integers(0, 9)) == 0:
        # Around max_message_size, in fragments under max_frame_size: the message limit decides.
        data += bytes(draw(st.integers(MAX_MESSAGE - len(data) - 8, MAX_MESSAGE - len(data) + 8)))
        cuts += range(3000, len(data), 3000)
    cuts = sorted(cuts)
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    key = draw(st.binary(min_size=4, max_size=4))
    out = b""
    for index, piece in enumerate(pieces):
        if index and draw(st.integers(0, 3)) == 0:
            out += encode(OP_PING, b"between", fin=True, rsv=0, masked=True, length_form=0, key=key)
        last = index == len(pieces) - 1
        out += encode(opcode if index == 0 else OP_CONT, piece, fin=last, rsv=0, masked=True, length_form=0, key=key)
    return out


@st.composite
def controls(draw: st.DrawFn) -> bytes:
    opcode = draw(st.sampled_from([OP_PING, OP_PING, OP_PONG, OP_CLOSE]))
    payload = draw(payloads(opcode)) if opcode == OP_CLOSE else draw(st.binary(max_size=125))
    key = draw(st.binary(min_size=4, max_size=4))
    return encode(opcode, payload, fin=True, rsv=0, masked=True, length_form=0, key=key)


def frames() -> st.SearchStrategy[bytes]:
    return st.one_of(messages(), messages(), controls(), bad_frames())


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(frames(), min_size=1, max_size=6))))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "repeat", "length"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 32))]
        else:
            # A length claim: 16- or 64-bit length fields with any value.
            width = draw(st.sampled_from([2, 8]))
            value = draw(st.integers(0, 2 ** (8 * width) - 1))
            data[at:at] = bytes((0x82, 0x80 | (126 if width == 2 else 127))) + value.to_bytes(width, "big")
    return bytes(data)


def random_garbage(rng: random.Random) -> bytes:
    """Pure noise, or noise behind a plausible first byte so that parsing gets further."""
    noise = rng.randbytes(rng.randint(1, 600))
    if rng.random() < 0.5:
        return noise
    return bytes((rng.choice([0x81, 0x82, 0x01, 0x89, 0x88]), 0x80 | rng.randint(0, 127))) + noise


# -- the tests


def test_oracle_sanity() -> None:
    """The oracle itself, on inputs whose answer is known."""
    key = b"abcd"
    ok = encode(OP_TEXT, b"hi", fin=True, rsv=0, masked=True, length_form=0, key=key)
    ping = encode(OP_PING, b"p", fin=True, rsv=0, masked=True, length_form=0, key=key)
    close = encode(OP_CLOSE, b"\x03\xe8bye", fin=True, rsv=0, masked=True, length_form=0, key=key)
    assert expected_for(ok + ping + close) == Expected([(OP_TEXT, b"hi")], [b"p"], ("close", b"\x03\xe8bye"))
    assert expected_for(ok[:-1]) == Expected()
    assert expected_for(b"\x81\x02hi").end == ("error", 1002)
    assert expected_for(b"\x82\xff" + (2**62).to_bytes(8, "big") + key).end == ("error", 1009)
    assert expected_for(encode(OP_TEXT, b"\xff", fin=True, rsv=0, masked=True, length_form=0, key=key)).end == (
        "error",
        1007,
    )


def test_live_server_survives_mutated_frames_and_garbage(caplog: pytest.LogCaptureFixture) -> None:
    baseline = ResourceBaseline()
    recorder = Recorder()
    with serve(recorder, **OPTIONS) as server:

        @LIVE_FUZZ
        @given(stream=mutated_streams())
        def mutated(stream: bytes) -> None:
            check_connection(server.port, stream)

        mutated()

        seed = int.from_bytes(os.urandom(4), "big")
        rng = random.Random(seed)
        streams = [random_garbage(rng) for _ in range(GARBAGE_CONNECTIONS)]
        with ThreadPoolExecutor(8, thread_name_prefix="garbage-client") as pool:
            futures = [pool.submit(check_connection, server.port, stream) for stream in streams]
            for stream, future in zip(streams, futures, strict=True):
                try:
                    future.result(timeout=3 * PROMPTLY)
                except BaseException as error:
                    raise AssertionError(f"random garbage (seed {seed}) {stream.hex()}: {error}") from error

        # A normal client is still served.
        with connect(url(server), open_timeout=PROMPTLY) as ws:
            ws.send("still alive")
            assert ws.recv(timeout=PROMPTLY) == "still alive"

        opened = recorder.kinds().count("open")
        assert opened >= MUTATED_CONNECTIONS + GARBAGE_CONNECTIONS
        recorder.wait_for(lambda events: [e[0] for e in events].count("close") == opened)
        assert server.gateways[0].endpoint.get_clients() == []
    baseline.assert_back()
    assert_no_errors(caplog)


HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def http_garbage(rng: random.Random) -> bytes:
    """Noise, or the handshake with bytes flipped, cut or inserted."""
    if rng.random() < 0.3:
        return rng.randbytes(rng.randint(1, 300))
    data = bytearray(HANDSHAKE)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data))
        choice = rng.random()
        if choice < 0.4:
            data[at] = rng.randrange(256)
        elif choice < 0.7:
            del data[at : at + rng.randint(1, 10)]
        else:
            data[at:at] = rng.randbytes(rng.randint(1, 10))
    return bytes(data)


def check_http_connection(port: int, data: bytes) -> None:
    """Whatever the request bytes, the server answers or closes; it never hangs."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):  # bounded by the socket timeout
            reply += chunk
    if reply.startswith(b"HTTP/"):
        status = int(reply.split(b" ", 2)[1])
        # 101: the mutation left a valid handshake (then our half-close ended it).
        assert status == 101 or 400 <= status < 600, reply[:200]
    else:
        # Nothing, or a body without status line or headers: the HTTP/0.9 answer to a
        # request line without a version (http.server's error page, or the gateway's
        # own refusal, whose text starts with its status code).
        assert reply == b"" or reply.lstrip().startswith(b"<!DOCTYPE HTML") or re.match(rb"[45]\d\d ", reply), reply


def test_http_layer_garbage_is_refused_without_error_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Garbage instead of a handshake: refused or dropped, logged below ERROR (it is the peer's fault)."""
    baseline = ResourceBaseline()
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    with serve(Recorder(), **OPTIONS) as server:
        for _ in range(100):
            data = http_garbage(rng)
            try:
                check_http_connection(server.port, data)
            except BaseException as error:
                raise AssertionError(f"HTTP garbage (seed {seed}) {data!r}: {error}") from error
        with connect(url(server), open_timeout=PROMPTLY) as ws:
            ws.send("still alive")
            assert ws.recv(timeout=PROMPTLY) == "still alive"
    baseline.assert_back()
    assert_no_errors(caplog)
