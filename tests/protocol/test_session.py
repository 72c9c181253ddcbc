"""The sans-I/O session: its transitions, close codes, pings and encodings, without a socket.

Frames going in are built by hand (tests/utils.client_frame); frames coming out
are read back with wsproto's frame decoder, the independent oracle.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from wsproto.frame_protocol import FrameDecoder
from wsproto.frame_protocol import Opcode

from syncaerys.protocol.deflate import DeflateParams
from syncaerys.protocol.frames import OP_BINARY
from syncaerys.protocol.frames import OP_CLOSE
from syncaerys.protocol.frames import OP_PING
from syncaerys.protocol.frames import OP_PONG
from syncaerys.protocol.frames import OP_TEXT
from syncaerys.protocol.frames import Encoded
from syncaerys.protocol.frames import OutFrame
from syncaerys.protocol.parser import Frame
from syncaerys.protocol.session import ABNORMAL_REASON
from syncaerys.protocol.session import CloseReceived
from syncaerys.protocol.session import PingReceived
from syncaerys.protocol.session import PongReceived
from syncaerys.protocol.session import ProtocolViolation
from syncaerys.protocol.session import Session
from syncaerys.protocol.session import State
from tests.utils import client_frame


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def session(clock: Clock | None = None, deflate: DeflateParams | None = None, **limits: int | None) -> Session:
    return Session(
        max_frame_size=limits.get("max_frame_size"),
        max_message_size=limits.get("max_message_size"),
        text_only=False,
        deflate=deflate,
        auto_frame_size=limits.get("auto_frame_size"),
        compression_threshold=20,
        compression_memory_level=5,
        clock=clock or Clock(),
    )


def whole(frames: list[OutFrame]) -> list[bytes]:
    """The frames of a small message, each one bytes object (large payloads are (header, payload) pairs)."""
    assert all(isinstance(frame, bytes) for frame in frames)
    return [frame for frame in frames if isinstance(frame, bytes)]


def as_frames(encoded: Encoded) -> list[OutFrame]:
    """A message as :meth:`Session.encode` gave it, as its list of frames (one frame may come as its bytes)."""
    assert not callable(encoded)
    return [encoded] if isinstance(encoded, bytes) else encoded


def decode(data: bytes) -> list[tuple[Opcode, bytes, bool]]:
    """Server frames as wsproto reads them (a client's decoder: unmasked frames expected).

    Each as (opcode, payload, whether it ends its message).
    """
    decoder = FrameDecoder(client=True)
    decoder.receive_bytes(data)
    frames = []
    while (frame := decoder.process_buffer()) is not None:
        frames.append((frame.opcode, bytes(frame.payload), frame.message_finished))  # type: ignore[arg-type]
    return frames


def events(s: Session, data: bytes) -> list[Any]:
    s.receive_data(data)
    out: list[Any] = []
    while (event := s.next_event()) is not None:
        out.append(event)
    return out


def test_data_frames_come_out_and_are_counted() -> None:
    s = session()
    data = client_frame(OP_TEXT, b"hel", fin=False) + client_frame(0, b"lo") + client_frame(OP_BINARY, b"x")
    got = events(s, data)
    assert got == [Frame(OP_TEXT, "hel", False), Frame(0, "lo", True), Frame(OP_BINARY, b"x", True)]
    assert (s.frames_read, s.messages_read, s.state) == (3, 2, State.OPEN)
    assert s.bytes_read == len(data)


def test_a_ping_gets_its_pong_even_between_fragments() -> None:
    s = session()
    got = events(s, client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_PING, b"p!") + client_frame(0, b"b"))
    assert got[1] == PingReceived(got[1].reply)
    assert decode(got[1].reply) == [(Opcode.PONG, b"p!", True)]
    assert [type(e) for e in got] == [Frame, PingReceived, Frame]


def test_a_remote_close_is_echoed_once_and_tells_remote_from_local() -> None:
    s = session()
    got = events(s, client_frame(OP_CLOSE, (3001).to_bytes(2, "big") + b"bye") + client_frame(OP_TEXT, b"late"))
    # Nothing is read after a close frame.
    assert got == [CloseReceived(3001, "bye")]
    assert s.reading_done and s.next_event() is None
    reply = s.close_received(3001, "bye")
    assert reply is not None and decode(reply) == [(Opcode.CLOSE, (3001).to_bytes(2, "big") + b"bye", True)]
    assert (s.state, s.close_code, s.close_reason) == (State.CLOSING_REMOTE, 3001, "bye")
    # A local close afterwards is nothing: the handshake is under way.
    assert s.close(1000, "") is None
    assert s.close_code == 3001


def test_a_local_close_then_the_peers_answer_completes_without_a_second_frame() -> None:
    s = session()
    frame = s.close(1001, "going")
    assert frame is not None and decode(frame) == [(Opcode.CLOSE, (1001).to_bytes(2, "big") + b"going", True)]
    assert s.state is State.CLOSING_LOCAL and not s.is_open
    assert events(s, client_frame(OP_CLOSE, (1001).to_bytes(2, "big"))) == [CloseReceived(1001, "")]
    assert s.close_received(1001, "") is None
    assert (s.close_code, s.close_reason) == (1001, "going")
    s.connection_lost()
    assert (s.state, s.close_code) == (State.CLOSED, 1001)


def test_an_empty_close_is_answered_with_an_empty_close() -> None:
    s = session()
    assert events(s, client_frame(OP_CLOSE)) == [CloseReceived(1005, "")]
    reply = s.close_received(1005, "")
    assert reply is not None and decode(reply) == [(Opcode.CLOSE, b"", True)]


def test_tcp_lost_while_open_is_1006() -> None:
    s = session()
    s.connection_lost()
    assert (s.state, s.close_code, s.close_reason, s.reading_done) == (State.CLOSED, 1006, ABNORMAL_REASON, True)
    assert s.close(1000, "") is None and s.ping() is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (client_frame(OP_TEXT, b"x", masked=False), 1002),
        (client_frame(OP_TEXT, b"\xff"), 1007),
        (client_frame(OP_BINARY, b"x" * 11), 1009),
        (client_frame(OP_CLOSE, (1005).to_bytes(2, "big")), 1002),
    ],
    ids=["unmasked", "bad utf-8", "too big", "reserved close code"],
)
def test_a_violation_ends_reading_and_the_caller_fails_with_its_code(data: bytes, code: int) -> None:
    s = session(max_message_size=10)
    got = events(s, data)
    assert len(got) == 1 and isinstance(got[0], ProtocolViolation)
    assert got[0].error.code == code and s.reading_done
    frame = s.close(got[0].error.code, got[0].error.reason)
    assert frame is not None and decode(frame)[0][1][:2] == code.to_bytes(2, "big")
    assert s.state is State.CLOSING_LOCAL


def test_pings_are_numbered_and_latency_comes_from_the_clock_given() -> None:
    clock = Clock()
    s = session(clock)
    first = s.ping()
    assert first is not None and decode(first) == [(Opcode.PING, b"1", True)]
    second = s.ping()
    assert second is not None and s.unanswered_pings == 2
    clock.now += 0.25
    # A pong of the older ping counts it answered but gives no latency; the latest does.
    assert events(s, client_frame(OP_PONG, b"1")) == [PongReceived(None)]
    assert s.unanswered_pings == 1
    assert events(s, client_frame(OP_PONG, b"2")) == [PongReceived(0.25)]
    assert (s.unanswered_pings, s.latency) == (0, 0.25)
    # Unsolicited and bogus pongs change nothing.
    assert events(s, client_frame(OP_PONG, b"hello") + client_frame(OP_PONG, b"9")) == [PongReceived(None)] * 2
    assert s.pongs_received == 2


def test_plain_messages_share_one_encoding_and_are_fragmented_past_the_frame_size() -> None:
    s = session(auto_frame_size=4)
    assert s.shared_key(100) == session(auto_frame_size=4).shared_key(100) != session().shared_key(100)
    frames = s.encode(OP_TEXT, b"abcdefgh")
    assert isinstance(frames, list)
    assert decode(b"".join(whole(frames))) == [(Opcode.TEXT, b"abcd", False), (Opcode.CONTINUATION, b"efgh", True)]


def test_compression_is_decided_in_one_place() -> None:
    shared = session(deflate=DeflateParams(True, False, 15, False))
    ordered = session(deflate=DeflateParams(False, False, 15, False))
    payload = b"compress me " * 10
    # Below the threshold nobody compresses, and the bytes are shareable with plain clients.
    assert shared.shared_key(10) == ordered.shared_key(10) == session().shared_key(10)
    assert as_frames(shared.encode(OP_TEXT, b"short")) == as_frames(session().encode(OP_TEXT, b"short"))
    # Without context takeover: one compression for every client with the same parameters.
    encoded = shared.encode(OP_TEXT, payload)
    assert isinstance(encoded, list) and shared.shared_key(len(payload)) is not None
    frames = whole(encoded)
    assert frames[0][0] & 0x40  # RSV1: a compressed message
    assert zlib.decompressobj(-15).decompress(frames[0][2:] + b"\x00\x00\xff\xff") == payload
    # With it: this client's own context, so no key, and a builder called in queue order.
    assert ordered.shared_key(len(payload)) is None
    build = ordered.encode(OP_TEXT, payload)
    assert callable(build)
    first, second = build()[0], build()[0]
    assert len(second) < len(first)  # the second message refers back to the first
