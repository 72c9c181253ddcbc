"""FrameParser: round trips, every error with its code and reason, fragmentation,
UTF-8 across fragments, arbitrary read boundaries, and a differential test
against wsproto, the independent reference. Every test runs twice: with the C
frame parser and with the pure-Python one (tests/parse_paths.py).

Client frames are built here with the test's own encoder (:func:`client_frame`),
not with syncaerys's, so the parser is never checked against itself.
"""

from __future__ import annotations

import dataclasses
import sys

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol
from wsproto.frame_protocol import Opcode
from wsproto.frame_protocol import ParseFailed

from syncaerys.exceptions import ProtocolError
from syncaerys.protocol.frames import OP_BINARY
from syncaerys.protocol.frames import OP_CLOSE
from syncaerys.protocol.frames import OP_CONT
from syncaerys.protocol.frames import OP_PING
from syncaerys.protocol.frames import OP_PONG
from syncaerys.protocol.frames import OP_TEXT
from syncaerys.protocol.parser import DIRECT_MAX
from syncaerys.protocol.parser import Frame
from syncaerys.protocol.parser import FrameParser
from tests.parse_paths import parse_path  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("parse_path")

# The exact reasons of aerys.md 4.4 and 4.6.
RSV = "RSV must be 0 if no extensions are negotiated"
RESERVED_NONCONTROL = "Use of reserved non-control frame opcode"
RESERVED_CONTROL = "Use of reserved control frame opcode"
MSB = "Most significant bit of 64-bit length field set"
MASK_REQUIRED = "Payload mask required"
CONTROL_FRAGMENTED = "Illegal control frame fragmentation"
CONTROL_TOO_LONG = "Control frame payload must be of maximum 125 bytes or less"
TOO_BIG = "Received payload exceeds maximum allowable size"
BINARY_REFUSED = "BINARY opcodes (0x02) not accepted"
BAD_UTF8 = "Invalid TEXT data; UTF-8 required"
BAD_CONTINUATION = "Illegal CONTINUATION opcode; initial message payload frame must be TEXT or BINARY"
BAD_DATA_OPCODE = "Illegal data type opcode after unfinished previous data type frame; opcode MUST be CONTINUATION"
CLOSE_ONE_BYTE = "Close code must be two bytes"
CLOSE_BAD_CODE = "Invalid close code"
CLOSE_BAD_REASON = "Close reason must be valid UTF-8"

MASK = b"\x37\xfa\x21\x3d"

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the test's own client-side encoder


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 5.3 masking, written independently of syncaerys.protocol.mask."""
    return bytes(byte ^ key[index & 3] for index, byte in enumerate(payload))


def client_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    key: bytes = MASK,
    length_bytes: int | None = None,
) -> bytes:
    """One client frame. ``length_bytes`` forces a 0/2/8-byte extended length (possibly non-minimal)."""
    length = len(payload)
    if length_bytes is None:
        length_bytes = 0 if length < 126 else 2 if length < 65536 else 8
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if masked else 0
    if length_bytes == 0:
        header = bytes((first, mask_bit | length))
    elif length_bytes == 2:
        header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
    if not masked:
        return header + payload
    return header + key + mask_payload(payload, key)


def header_only(opcode: int, declared_length: int, *, fin: bool = True) -> bytes:
    """The masked header (mask key included) of a frame whose payload is never sent."""
    first = (0x80 if fin else 0) | opcode
    if declared_length < 126:
        return bytes((first, 0x80 | declared_length)) + MASK
    if declared_length < 65536:
        return bytes((first, 0x80 | 126)) + declared_length.to_bytes(2, "big") + MASK
    return bytes((first, 0x80 | 127)) + declared_length.to_bytes(8, "big") + MASK


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


# -- driving the parser


def drain(parser: FrameParser) -> list[Frame]:
    frames = []
    while (frame := parser.next_frame()) is not None:
        frames.append(frame)
    return frames


def parse(data: bytes, **options: object) -> list[Frame]:
    parser = FrameParser(**options)  # type: ignore[arg-type]
    parser.feed(data)
    return drain(parser)


def parse_chunks(chunks: list[bytes], **options: object) -> list[Frame]:
    parser = FrameParser(**options)  # type: ignore[arg-type]
    frames = []
    for chunk in chunks:
        parser.feed(chunk)
        frames.extend(drain(parser))
    return frames


def parse_until_error(data: bytes, **options: object) -> tuple[list[Frame], ProtocolError]:
    parser = FrameParser(**options)  # type: ignore[arg-type]
    parser.feed(data)
    frames: list[Frame] = []
    with pytest.raises(ProtocolError) as info:
        while (frame := parser.next_frame()) is not None:
            frames.append(frame)
    return frames, info.value


def split_at(data: bytes, offsets: list[int]) -> list[bytes]:
    cuts = sorted({min(max(offset, 0), len(data)) for offset in offsets})
    pieces = []
    start = 0
    for cut in cuts:
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return pieces


def ascii_text(length: int) -> str:
    return ("syncaerys-" * (length // 10 + 1))[:length]


def binary_data(length: int) -> bytes:
    return bytes((index * 7 + 3) % 256 for index in range(length))


# -- round trips

LENGTHS = [0, 125, 126, 127, 128, 65535, 65536]


@pytest.mark.parametrize("length", LENGTHS)
def test_text_frame_round_trip(length: int) -> None:
    text = ascii_text(length)
    data = client_frame(OP_TEXT, text.encode())
    assert len(data) - length == (6 if length < 126 else 8 if length < 65536 else 14)
    frames = parse(data)
    assert frames == [Frame(OP_TEXT, text, True)]
    assert isinstance(frames[0].data, str)


@pytest.mark.parametrize("length", LENGTHS)
def test_binary_frame_round_trip(length: int) -> None:
    payload = binary_data(length)
    frames = parse(client_frame(OP_BINARY, payload))
    assert frames == [Frame(OP_BINARY, payload, True)]
    assert isinstance(frames[0].data, bytes)


def test_multibyte_text_round_trip() -> None:
    text = "héllo wörld ✓ 😀 " * 20
    assert parse(client_frame(OP_TEXT, text.encode())) == [Frame(OP_TEXT, text, True)]


PING_PAYLOADS = [b"", b"Hello world!", bytes((0, 255, 128, 254, 1, 13, 10, 0xC0, 0xED, 0xA0)), b"*" * 125]


@pytest.mark.parametrize("payload", PING_PAYLOADS)
@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG])
def test_ping_and_pong_payloads_are_accepted(opcode: int, payload: bytes) -> None:
    frames = parse(client_frame(opcode, payload))
    assert frames == [Frame(opcode, payload, True)]
    assert isinstance(frames[0].data, bytes)


def test_several_frames_in_one_read() -> None:
    data = (
        client_frame(OP_TEXT, b"one")
        + client_frame(OP_PING, b"p")
        + client_frame(OP_BINARY, b"\x00\x01")
        + client_frame(OP_CLOSE, close_payload(1000, b"bye"))
    )
    assert parse(data) == [
        Frame(OP_TEXT, "one", True),
        Frame(OP_PING, b"p", True),
        Frame(OP_BINARY, b"\x00\x01", True),
        Frame(OP_CLOSE, "bye", True, 1000),
    ]


def test_incomplete_frame_returns_none_until_complete() -> None:
    data = client_frame(OP_TEXT, b"hello")
    parser = FrameParser()
    parser.feed(data[:-1])
    assert parser.next_frame() is None
    assert parser.next_frame() is None
    parser.feed(data[-1:])
    assert parser.next_frame() == Frame(OP_TEXT, "hello", True)
    assert parser.next_frame() is None


# -- errors, each with its code and exact reason


def single_error_cases() -> list[object]:
    cases: list[object] = []
    for rsv, name in ((4, "rsv1"), (2, "rsv2"), (1, "rsv3"), (7, "rsv123")):
        cases.append(pytest.param(client_frame(OP_TEXT, b"a", rsv=rsv), 1002, RSV, id=f"text-{name}"))
    cases.append(pytest.param(client_frame(OP_PING, b"", rsv=4), 1002, RSV, id="ping-rsv1"))
    for opcode in range(3, 8):
        cases.append(pytest.param(client_frame(opcode, b"x"), 1002, RESERVED_NONCONTROL, id=f"opcode-{opcode}"))
    for opcode in range(11, 16):
        cases.append(pytest.param(client_frame(opcode, b"x"), 1002, RESERVED_CONTROL, id=f"opcode-{opcode}"))
    cases += [
        pytest.param(client_frame(OP_TEXT, b"hello", masked=False), 1002, MASK_REQUIRED, id="unmasked-text"),
        # RFC 6455 5.1: every unmasked client frame is rejected (Aerys accepted zero-length ones).
        pytest.param(client_frame(OP_TEXT, b"", masked=False), 1002, MASK_REQUIRED, id="unmasked-empty-text"),
        pytest.param(client_frame(OP_PING, b"*" * 125, masked=False), 1002, MASK_REQUIRED, id="unmasked-ping"),
        pytest.param(client_frame(OP_PING, b"x", fin=False), 1002, CONTROL_FRAGMENTED, id="nonfin-ping"),
        pytest.param(client_frame(OP_PONG, b"", fin=False), 1002, CONTROL_FRAGMENTED, id="nonfin-pong"),
        pytest.param(client_frame(OP_CLOSE, b"", fin=False), 1002, CONTROL_FRAGMENTED, id="nonfin-close"),
        pytest.param(client_frame(OP_PING, b"*" * 126), 1002, CONTROL_TOO_LONG, id="ping-126"),
        pytest.param(client_frame(OP_PONG, b"*" * 200), 1002, CONTROL_TOO_LONG, id="pong-200"),
        pytest.param(client_frame(OP_CLOSE, close_payload(1000, b"x" * 124)), 1002, CONTROL_TOO_LONG, id="close-126"),
        pytest.param(header_only(OP_PING, 1 << 40), 1002, CONTROL_TOO_LONG, id="ping-64bit-header"),
        pytest.param(client_frame(OP_CONT, b"x"), 1002, BAD_CONTINUATION, id="cont-fin"),
        pytest.param(client_frame(OP_CONT, b"x", fin=False), 1002, BAD_CONTINUATION, id="cont-nonfin"),
        pytest.param(client_frame(OP_CONT, b""), 1002, BAD_CONTINUATION, id="cont-empty"),
    ]
    return cases


@pytest.mark.parametrize(("data", "code", "reason"), single_error_cases())
def test_protocol_errors(data: bytes, code: int, reason: str) -> None:
    frames, error = parse_until_error(data)
    assert frames == []
    assert (error.code, error.reason) == (code, reason)
    assert str(error) == f"{code} {reason}"


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING])
def test_64bit_length_with_msb_set_is_decided_from_the_header(opcode: int) -> None:
    length = (1 << 63) | 5
    header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    parser = FrameParser()
    parser.feed(header)  # not even the mask key
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    # aerys.md 4.4: the MSB check (3) precedes the control-frame checks (5)
    assert (info.value.code, info.value.reason) == (1002, MSB)


def test_msb_check_precedes_the_size_limit() -> None:
    header = bytes((0x82, 0x80 | 127)) + ((1 << 63) | 5).to_bytes(8, "big") + MASK
    _, error = parse_until_error(header, max_frame_size=1000, max_message_size=1000)
    assert (error.code, error.reason) == (1002, MSB)


def test_continuation_after_a_finished_message_delivers_the_message_first() -> None:
    data = client_frame(OP_TEXT, b"done") + client_frame(OP_CONT, b"more")
    frames, error = parse_until_error(data)
    assert frames == [Frame(OP_TEXT, "done", True)]
    assert (error.code, error.reason) == (1002, BAD_CONTINUATION)


@pytest.mark.parametrize(
    ("first", "second"),
    [(OP_TEXT, OP_TEXT), (OP_TEXT, OP_BINARY), (OP_BINARY, OP_TEXT), (OP_BINARY, OP_BINARY)],
)
def test_new_data_opcode_while_a_message_is_open(first: int, second: int) -> None:
    data = client_frame(first, b"part", fin=False) + client_frame(OP_PING, b"") + client_frame(second, b"new")
    frames, error = parse_until_error(data)
    assert [frame.opcode for frame in frames] == [first, OP_PING]
    assert (error.code, error.reason) == (1002, BAD_DATA_OPCODE)


# -- size limits (1009), decided from the header


@pytest.mark.parametrize("declared", [1001, 65536, 1 << 40, (1 << 63) - 1])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_frame_over_max_frame_size_is_refused_from_its_header(opcode: int, declared: int) -> None:
    parser = FrameParser(max_frame_size=1000)
    parser.feed(header_only(opcode, declared))
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert (info.value.code, info.value.reason) == (1009, TOO_BIG)


def test_frame_over_max_frame_size_is_refused_before_the_mask_key() -> None:
    parser = FrameParser(max_frame_size=1000)
    parser.feed(bytes((0x82, 0x80 | 126)) + (1001).to_bytes(2, "big"))
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert info.value.code == 1009


def test_frame_at_max_frame_size_is_accepted() -> None:
    payload = binary_data(1000)
    assert parse(client_frame(OP_BINARY, payload), max_frame_size=1000) == [Frame(OP_BINARY, payload, True)]


def test_max_frame_size_applies_to_each_fragment() -> None:
    data = client_frame(OP_TEXT, b"a" * 1000, fin=False) + header_only(OP_CONT, 1001)
    frames, error = parse_until_error(data, max_frame_size=1000)
    assert frames == [Frame(OP_TEXT, "a" * 1000, False)]
    assert (error.code, error.reason) == (1009, TOO_BIG)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_message_over_max_message_size_across_fragments(opcode: int) -> None:
    parser = FrameParser(max_message_size=1000)
    parser.feed(client_frame(opcode, b"a" * 600, fin=False))
    parser.feed(client_frame(OP_PING, b"x" * 100))  # control frames do not count
    assert len(drain(parser)) == 2
    parser.feed(client_frame(OP_CONT, b"b" * 300, fin=False))
    assert len(drain(parser)) == 1
    parser.feed(header_only(OP_CONT, 101))  # 600 + 300 + 101 > 1000: refused before the payload
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert (info.value.code, info.value.reason) == (1009, TOO_BIG)


def test_message_of_exactly_max_message_size_is_accepted_and_the_count_resets() -> None:
    data = b""
    for _ in range(2):
        data += client_frame(OP_TEXT, b"a" * 600, fin=False) + client_frame(OP_CONT, b"b" * 400)
    frames = parse(data, max_message_size=1000)
    assert [(frame.opcode, len(frame.data), frame.fin) for frame in frames] == [
        (OP_TEXT, 600, False),
        (OP_CONT, 400, True),
    ] * 2


def test_single_frame_message_over_max_message_size() -> None:
    _, error = parse_until_error(header_only(OP_TEXT, 1001), max_message_size=1000)
    assert (error.code, error.reason) == (1009, TOO_BIG)


def test_no_limits_by_default() -> None:
    parser = FrameParser()
    parser.feed(header_only(OP_BINARY, 1 << 40))
    assert parser.next_frame() is None


# -- text_only (1003)


def test_binary_under_text_only() -> None:
    frames, error = parse_until_error(
        client_frame(OP_TEXT, b"fine") + client_frame(OP_BINARY, b"\x00"),
        text_only=True,
    )
    assert frames == [Frame(OP_TEXT, "fine", True)]
    assert (error.code, error.reason) == (1003, BINARY_REFUSED)


def test_binary_under_text_only_is_refused_from_the_header() -> None:
    parser = FrameParser(text_only=True)
    parser.feed(header_only(OP_BINARY, 1 << 20))
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert (info.value.code, info.value.reason) == (1003, BINARY_REFUSED)


def test_text_only_accepts_text_and_control_frames() -> None:
    data = client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_PING, b"") + client_frame(OP_CONT, b"b")
    assert len(parse(data, text_only=True)) == 3


# -- UTF-8 (1007)

INVALID_UTF8 = [
    b"\xff",
    b"\x80",
    b"\xc0\xaf",  # overlong
    b"\xe0\x80\xaf",  # overlong
    b"\xed\xa0\x80",  # surrogate
    b"\xf4\x90\x80\x80",  # > U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xce",  # truncated at the end of the message
    b"\xe2\x82",
]


@pytest.mark.parametrize("bad", INVALID_UTF8)
def test_invalid_utf8_in_one_frame(bad: bytes) -> None:
    for payload in (b"caf\xc3\xa9 " + bad + b" ok", b"caf\xc3\xa9 " + bad, bad):
        _, error = parse_until_error(client_frame(OP_TEXT, payload))
        assert (error.code, error.reason) == (1007, BAD_UTF8), payload


@pytest.mark.parametrize("bad", INVALID_UTF8)
def test_invalid_utf8_across_fragments(bad: bytes) -> None:
    # The invalid sequence straddles the fragment boundary when it is longer than a byte.
    cut = max(1, len(bad) - 1)
    data = (
        client_frame(OP_TEXT, b"abc" + bad[:cut], fin=False)
        + client_frame(OP_CONT, bad[cut:], fin=False)
        + client_frame(OP_CONT, b"")
    )
    _, error = parse_until_error(data)
    assert (error.code, error.reason) == (1007, BAD_UTF8)


def test_truncated_character_at_the_end_of_a_fragmented_message() -> None:
    data = client_frame(OP_TEXT, b"abc\xe2\x82", fin=False) + client_frame(OP_CONT, b"")
    frames, error = parse_until_error(data)
    assert frames == [Frame(OP_TEXT, "abc", False)]
    assert (error.code, error.reason) == (1007, BAD_UTF8)


@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xed\xa0\x80", b"\xe0\x80"])
def test_invalid_utf8_fails_fast_in_the_first_fragment(bad: bytes) -> None:
    parser = FrameParser()
    parser.feed(client_frame(OP_TEXT, b"ab" + bad + b"cd", fin=False))  # the rest of the message never arrives
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert (info.value.code, info.value.reason) == (1007, BAD_UTF8)


def test_invalid_utf8_fails_fast_in_a_middle_fragment() -> None:
    parser = FrameParser()
    parser.feed(client_frame(OP_TEXT, b"ok", fin=False))
    assert parser.next_frame() == Frame(OP_TEXT, "ok", False)
    parser.feed(client_frame(OP_CONT, b"\xce\xba\xff", fin=False))
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert info.value.code == 1007


def test_invalid_utf8_in_binary_is_fine() -> None:
    assert parse(client_frame(OP_BINARY, b"\xff\xfe")) == [Frame(OP_BINARY, b"\xff\xfe", True)]


# -- close frames


def test_empty_close_gives_1005() -> None:
    assert parse(client_frame(OP_CLOSE, b"")) == [Frame(OP_CLOSE, "", True, 1005)]


def test_one_byte_close() -> None:
    _, error = parse_until_error(client_frame(OP_CLOSE, b"\x03"))
    assert (error.code, error.reason) == (1002, CLOSE_ONE_BYTE)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_invalid_close_codes(code: int) -> None:
    _, error = parse_until_error(client_frame(OP_CLOSE, close_payload(code, b"why")))
    assert (error.code, error.reason) == (1002, CLOSE_BAD_CODE)


VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999]


@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_valid_close_codes(code: int) -> None:
    assert parse(client_frame(OP_CLOSE, close_payload(code, b"bye"))) == [Frame(OP_CLOSE, "bye", True, code)]
    assert parse(client_frame(OP_CLOSE, close_payload(code))) == [Frame(OP_CLOSE, "", True, code)]


def test_close_reason_utf8_and_longest_reason() -> None:
    reason = "arrêt ✓"
    assert parse(client_frame(OP_CLOSE, close_payload(1000, reason.encode()))) == [Frame(OP_CLOSE, reason, True, 1000)]
    longest = "r" * 123
    assert parse(client_frame(OP_CLOSE, close_payload(4000, longest.encode()))) == [
        Frame(OP_CLOSE, longest, True, 4000)
    ]


@pytest.mark.parametrize("reason", [b"\xff", b"ok\xce", b"\xed\xa0\x80"])
def test_close_reason_invalid_utf8(reason: bytes) -> None:
    _, error = parse_until_error(client_frame(OP_CLOSE, close_payload(1000, reason)))
    assert (error.code, error.reason) == (1007, CLOSE_BAD_REASON)


def test_close_frame_between_fragments() -> None:
    data = client_frame(OP_TEXT, b"half", fin=False) + client_frame(OP_CLOSE, close_payload(1001))
    assert parse(data) == [Frame(OP_TEXT, "half", False), Frame(OP_CLOSE, "", True, 1001)]


# -- fragmentation


def reassemble(frames: list[Frame]) -> list[tuple[int, str | bytes]]:
    """Messages and control frames in order, data messages joined."""
    out: list[tuple[int, str | bytes]] = []
    parts: list[str | bytes] = []
    kind = 0
    for frame in frames:
        if frame.opcode >= OP_CLOSE:
            out.append((frame.opcode, frame.data))
            continue
        if frame.opcode != OP_CONT:
            kind = frame.opcode
            parts = []
        parts.append(frame.data)
        if frame.fin:
            out.append((kind, "".join(parts) if kind == OP_TEXT else b"".join(parts)))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("sizes", [(1, 0), (126, 125), (32767, 32769), (32768, 32769)])
@pytest.mark.parametrize("with_ping", [False, True], ids=["plain", "ping"])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_fragmented_message(opcode: int, sizes: tuple[int, int], with_ping: bool) -> None:
    first, second = sizes
    payload = ascii_text(first + second).encode() if opcode == OP_TEXT else binary_data(first + second)
    data = client_frame(opcode, payload[:first], fin=False)
    if with_ping:
        data += client_frame(OP_PING, b"between")
    data += client_frame(OP_CONT, payload[first:])
    parser = FrameParser()
    parser.feed(data)
    frames = drain(parser)
    assert not parser.in_message
    expected_first = payload[:first].decode() if opcode == OP_TEXT else payload[:first]
    expected_second = payload[first:].decode() if opcode == OP_TEXT else payload[first:]
    expected = [Frame(opcode, expected_first, False)]
    if with_ping:
        expected.append(Frame(OP_PING, b"between", True))
    expected.append(Frame(OP_CONT, expected_second, True))
    assert frames == expected
    message = payload.decode() if opcode == OP_TEXT else payload
    assert reassemble(frames)[-1] == (opcode, message)


def test_in_message_tracks_an_open_fragmented_message() -> None:
    parser = FrameParser()
    assert not parser.in_message
    parser.feed(client_frame(OP_BINARY, b"a", fin=False))
    drain(parser)
    assert parser.in_message
    parser.feed(client_frame(OP_PING, b""))
    drain(parser)
    assert parser.in_message
    parser.feed(client_frame(OP_CONT, b"b"))
    drain(parser)
    assert not parser.in_message


def test_many_fragments_including_empty_ones() -> None:
    pieces = [b"", b"a", b"", b"bc", b"", b"d"]
    data = client_frame(OP_BINARY, pieces[0], fin=False)
    for piece in pieces[1:-1]:
        data += client_frame(OP_CONT, piece, fin=False)
    data += client_frame(OP_CONT, pieces[-1])
    assert reassemble(parse(data)) == [(OP_BINARY, b"abcd")]


@pytest.mark.parametrize(
    ("cut", "first_chunk", "second_chunk"),
    [
        (32769, "H" + "ö" * 16384, "ö" * 16386),  # on a character boundary
        (32768, "H" + "ö" * 16383, "ö" * 16387),  # in the middle of a character
    ],
)
@pytest.mark.parametrize("with_ping", [False, True], ids=["plain", "ping"])
def test_utf8_split_across_fragments(cut: int, first_chunk: str, second_chunk: str, with_ping: bool) -> None:
    text = "H" + "ö" * 32770
    encoded = text.encode()
    data = client_frame(OP_TEXT, encoded[:cut], fin=False)
    if with_ping:
        data += client_frame(OP_PING, b"mid")
    data += client_frame(OP_CONT, encoded[cut:])
    frames = [frame for frame in parse(data) if frame.opcode != OP_PING]
    assert [frame.data for frame in frames] == [first_chunk, second_chunk]
    assert "".join(frame.data for frame in frames) == text  # type: ignore[misc]


def test_four_byte_character_one_byte_per_fragment() -> None:
    encoded = "😀".encode()
    data = b"".join(
        client_frame(OP_TEXT if index == 0 else OP_CONT, encoded[index : index + 1], fin=index == 3)
        for index in range(4)
    )
    assert [frame.data for frame in parse(data)] == ["", "", "", "😀"]


def test_str_chunks_never_split_a_character_at_any_offset() -> None:
    text = "aé€😀b" * 3
    encoded = text.encode()
    for cut in range(len(encoded) + 1):
        data = client_frame(OP_TEXT, encoded[:cut], fin=False) + client_frame(OP_CONT, encoded[cut:])
        first, second = parse(data)
        assert isinstance(first.data, str)
        assert isinstance(second.data, str)
        # the first chunk is the longest whole-character prefix of the bytes received
        assert first.data == encoded[:cut].decode("utf-8", errors="ignore"), cut
        assert first.data + second.data == text


# -- arbitrary read boundaries

SMALL_STREAM = (
    client_frame(OP_TEXT, b"hello")
    + client_frame(OP_BINARY, binary_data(130))
    + client_frame(OP_PING, b"ping!")
    + client_frame(OP_TEXT, b"caf\xc3", fin=False)
    + client_frame(OP_PONG, b"")
    + client_frame(OP_CONT, b"\xa9 \xe2\x82", fin=False)
    + client_frame(OP_CONT, b"\xac")
    + client_frame(OP_BINARY, b"")
    + client_frame(OP_CLOSE, close_payload(1000, b"bye"))
)
LARGE_STREAM = (
    client_frame(OP_BINARY, binary_data(65536))
    + client_frame(OP_PING, b"x")
    + client_frame(OP_TEXT, ("é" * 35000).encode(), fin=False)
    + client_frame(OP_CONT, b"z" * 300)
)

LARGE_EXPECTED = parse(LARGE_STREAM)


def test_small_stream_reference() -> None:
    assert reassemble(parse(SMALL_STREAM)) == [
        (OP_TEXT, "hello"),
        (OP_BINARY, binary_data(130)),
        (OP_PING, b"ping!"),
        (OP_PONG, b""),
        (OP_TEXT, "café €"),
        (OP_BINARY, b""),
        (OP_CLOSE, "bye"),
    ]


def test_every_two_part_split_gives_the_same_frames() -> None:
    expected = parse(SMALL_STREAM)
    for cut in range(len(SMALL_STREAM) + 1):
        assert parse_chunks([SMALL_STREAM[:cut], SMALL_STREAM[cut:]]) == expected, cut


def test_every_three_part_split_of_a_frame_with_a_16bit_header() -> None:
    data = client_frame(OP_TEXT, ("ö" * 70).encode())
    expected = parse(data)
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1, 7):
            assert parse_chunks([data[:first], data[first:second], data[second:]]) == expected


@pytest.mark.parametrize("stream", [SMALL_STREAM, LARGE_STREAM], ids=["small", "large"])
def test_byte_by_byte_gives_the_same_frames(stream: bytes) -> None:
    expected = parse(stream)
    assert parse_chunks([stream[index : index + 1] for index in range(len(stream))]) == expected


def test_empty_feeds_are_harmless() -> None:
    chunks = []
    for index in range(0, len(SMALL_STREAM), 5):
        chunks += [b"", SMALL_STREAM[index : index + 5], b""]
    assert parse_chunks(chunks) == parse(SMALL_STREAM)


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=len(LARGE_STREAM)), max_size=12))
def test_random_splits_of_large_frames(offsets: list[int]) -> None:
    assert parse_chunks(split_at(LARGE_STREAM, offsets)) == LARGE_EXPECTED


# -- how much to read next (FrameParser.missing), and what the parser keeps


def frame_ends(stream: bytes) -> list[int]:
    """Where each frame of ``stream`` (masked client frames) ends, from the test's own header decoding."""
    ends = []
    offset = 0
    while offset < len(stream):
        length = stream[offset + 1] & 0x7F
        header = 2
        if length == 126:
            length = int.from_bytes(stream[offset + 2 : offset + 4], "big")
            header = 4
        elif length == 127:
            length = int.from_bytes(stream[offset + 2 : offset + 10], "big")
            header = 10
        offset += header + 4 + length
        ends.append(offset)
    return ends


def test_missing_is_the_rest_of_the_frame_once_its_header_is_in() -> None:
    data = client_frame(OP_BINARY, binary_data(70000))  # 14-byte header
    parser = FrameParser()
    assert parser.missing == 2
    parser.feed(data[:100])
    assert parser.next_frame() is None
    assert parser.missing == len(data) - 100
    parser.feed(data[100:5000])
    assert parser.missing == len(data) - 5000
    parser.feed(data[5000:])
    assert parser.missing == 0
    assert parser.next_frame() == Frame(OP_BINARY, binary_data(70000), True)
    assert parser.missing == 2  # the next header


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=len(LARGE_STREAM + SMALL_STREAM)), max_size=12))
def test_missing_never_reaches_past_the_frame_being_received(offsets: list[int]) -> None:
    # The connection reads at most ``missing`` bytes for a large frame: it must
    # be more than nothing while a frame is incomplete, and never run into the
    # next frame.
    stream = LARGE_STREAM + SMALL_STREAM
    ends = frame_ends(stream)
    parser = FrameParser()
    fed = 0
    frames = []
    for chunk in split_at(stream, offsets):
        parser.feed(chunk)
        fed += len(chunk)
        frames += drain(parser)
        if fed < len(stream):
            end = next(end for end in ends if end > fed)
            assert 0 < parser.missing <= end - fed
    assert frames == parse(stream)


def test_parsed_input_is_let_go() -> None:
    # A connection waiting for its next message must not keep the last read
    # (which may be a whole large frame) alive.
    data = client_frame(OP_BINARY, binary_data(100_000))
    references = sys.getrefcount(data)
    parser = FrameParser()
    parser.feed(data)
    assert parser.next_frame() is not None
    assert sys.getrefcount(data) == references


# -- differential test against wsproto
#
# The same client bytes go to syncaerys's FrameParser and to wsproto's
# server-side FrameProtocol; both must give the same messages, pings and pongs,
# and the same outcome (still open, closed by the peer with code/reason, or
# failed with the same close code). Differences by design, normalized here:
#
# 1. Non-minimal length encodings (e.g. a 5-byte payload with a 16-bit or 64-bit
#    length): RFC 6455 5.2 makes the minimal encoding a sender's duty; syncaerys
#    (like Aerys) accepts them, wsproto fails with 1002 ("Payload length used 2
#    bytes when 1 would have sufficed"; for a control frame "Control frame with
#    payload len > 125", from the 7-bit field alone). wsproto is fed the same
#    frame with the minimal encoding.
# 2. Close code 1014 (IANA "Bad Gateway"): syncaerys accepts 1007-1014 (the IANA registry); wsproto's
#    CloseReason enum stops at 1013, so it fails 1014 with 1002 ("CLOSE with
#    unknown reserved code"). wsproto is fed 1013 instead and syncaerys's 1014 is
#    read as 1013.
# 3. Size limits: syncaerys enforces max_frame_size/max_message_size, wsproto
#    has none; the parser under test runs without limits here.
# 4. After a close frame wsproto stops parsing; syncaerys's parser would go on
#    (its I/O shell stops reading). Both are compared up to the first close.
# 5. wsproto checks sequencing and UTF-8 on partial payloads as bytes arrive,
#    syncaerys on whole frames (sequencing from the header). On a stream that
#    ends mid-frame they can differ (see test_truncated_stream_differences), so
#    generated streams hold whole frames, except a final header whose 64-bit
#    length has the MSB set, which both refuse from the header.


@dataclasses.dataclass(frozen=True)
class Spec:
    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    key: bytes = MASK
    length_bytes: int | None = None  # None: minimal encoding


def serialize(specs: list[Spec], msb_tail: bool, *, for_wsproto: bool) -> bytes:
    out = []
    for spec in specs:
        payload = spec.payload
        length_bytes = spec.length_bytes
        if for_wsproto:
            length_bytes = None  # difference 1
            if spec.opcode == OP_CLOSE and payload[:2] == (1014).to_bytes(2, "big"):
                payload = (1013).to_bytes(2, "big") + payload[2:]  # difference 2
        out.append(
            client_frame(
                spec.opcode,
                payload,
                fin=spec.fin,
                rsv=spec.rsv,
                masked=spec.masked,
                key=spec.key,
                length_bytes=length_bytes,
            )
        )
    if msb_tail:
        out.append(bytes((0x82, 0xFF)) + ((1 << 63) | 3).to_bytes(8, "big") + MASK)
    return b"".join(out)


Event = tuple[object, ...]


def run_syncaerys(chunks: list[bytes]) -> tuple[list[Event], Event]:
    parser = FrameParser()
    events: list[Event] = []
    kind = 0
    parts: list[str | bytes] = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (frame := parser.next_frame()) is not None:
                if frame.opcode == OP_CLOSE:
                    code = 1013 if frame.code == 1014 else frame.code  # difference 2
                    events.append(("close", code, frame.data))
                    return events, ("closed",)  # difference 4
                if frame.opcode in (OP_PING, OP_PONG):
                    events.append(("control", frame.opcode, frame.data))
                    continue
                if frame.opcode != OP_CONT:
                    kind = frame.opcode
                    parts = []
                parts.append(frame.data)
                if frame.fin:
                    events.append(("message", kind, join(kind, parts)))
                    kind = 0
    except ProtocolError as error:
        return events, ("error", error.code)
    if kind:
        events.append(("partial", kind, join(kind, parts)))
    return events, ("open",)


def run_wsproto(chunks: list[bytes]) -> tuple[list[Event], Event]:
    protocol = FrameProtocol(client=False, extensions=[])
    events: list[Event] = []
    kind = 0
    parts: list[str | bytes] = []
    try:
        for chunk in chunks:
            protocol.receive_bytes(chunk)
            for frame in protocol.received_frames():
                if frame.opcode is Opcode.CLOSE:
                    code, reason = frame.payload  # type: ignore[str-unpack]
                    events.append(("close", int(code), reason))
                    return events, ("closed",)
                if frame.opcode in (Opcode.PING, Opcode.PONG):
                    events.append(("control", int(frame.opcode), bytes(frame.payload)))  # type: ignore[arg-type]
                    continue
                if not kind:
                    kind = int(frame.opcode)
                    parts = []
                payload = frame.payload
                parts.append(payload if isinstance(payload, str) else bytes(payload))  # type: ignore[arg-type]
                if frame.message_finished:
                    events.append(("message", kind, join(kind, parts)))
                    kind = 0
    except ParseFailed as error:
        return events, ("error", int(error.code))
    if kind:
        events.append(("partial", kind, join(kind, parts)))
    return events, ("open",)


def join(kind: int, parts: list[str | bytes]) -> str | bytes:
    if kind == OP_TEXT:
        return "".join(parts)  # type: ignore[arg-type]
    return b"".join(parts)  # type: ignore[arg-type]


BAD_SEQUENCES = [b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xce", b"\xe2\x82"]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]


@st.composite
def text_bytes(draw: st.DrawFn, max_size: int = 40) -> bytes:
    data = draw(st.text(max_size=max_size)).encode()
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(BAD_SEQUENCES)) + data[at:]
    return data


@st.composite
def payload_bytes(draw: st.DrawFn, opcode: int) -> bytes:
    if opcode == OP_TEXT:
        data = draw(text_bytes())
    else:
        data = draw(st.binary(max_size=60))
    if draw(st.integers(0, 7)) == 0:
        data = data * draw(st.integers(2, 40))  # 16-bit lengths
    return data


@st.composite
def close_bytes(draw: st.DrawFn) -> bytes:
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return b""
    if shape == 1:
        return draw(st.binary(min_size=1, max_size=1))
    if shape < 4:
        code = draw(st.sampled_from(VALID_CLOSE_CODES))
    else:
        code = draw(st.sampled_from(INVALID_CLOSE_CODES) if shape == 4 else st.integers(0, 65535))
    return code.to_bytes(2, "big") + draw(text_bytes(max_size=30))  # type: ignore[no-any-return]


@st.composite
def control_spec(draw: st.DrawFn) -> Spec:
    opcode = draw(st.sampled_from([OP_PING, OP_PONG, OP_PING, OP_PONG, OP_CLOSE]))
    payload = draw(close_bytes()) if opcode == OP_CLOSE else draw(st.binary(max_size=125))
    if draw(st.integers(0, 15)) == 0:
        payload += b"*" * 126  # over the 125-byte limit of control frames
    return Spec(opcode, payload)


@st.composite
def message_specs(draw: st.DrawFn) -> list[Spec]:
    opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY]))
    payload = draw(payload_bytes(opcode))
    count = draw(st.integers(1, 4))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, len(payload)]
    specs = []
    for index in range(count):
        if index and draw(st.integers(0, 3)) == 0:
            specs.append(draw(control_spec().filter(lambda spec: spec.opcode != OP_CLOSE)))
        piece = payload[bounds[index] : bounds[index + 1]]
        specs.append(Spec(opcode if index == 0 else OP_CONT, piece, fin=index == count - 1))
    return specs


@st.composite
def random_spec(draw: st.DrawFn) -> Spec:
    opcode = draw(st.integers(0, 15))
    if opcode == OP_CLOSE:
        payload = draw(close_bytes())
    elif opcode in (OP_TEXT, OP_CONT):
        payload = draw(text_bytes())
    else:
        payload = draw(st.binary(max_size=130))
    return Spec(opcode, payload, fin=draw(st.booleans()))


@st.composite
def mutated(draw: st.DrawFn, spec: Spec) -> Spec:
    change = draw(st.sampled_from(["opcode", "fin", "rsv", "mask", "length", "length"]))
    if change == "opcode":
        return dataclasses.replace(spec, opcode=draw(st.integers(0, 15)))
    if change == "fin":
        return dataclasses.replace(spec, fin=not spec.fin)
    if change == "rsv":
        return dataclasses.replace(spec, rsv=draw(st.sampled_from([1, 2, 4, 1, 2, 4, 3, 5, 6, 7])))
    if change == "mask":
        return dataclasses.replace(spec, masked=False)
    return dataclasses.replace(spec, length_bytes=draw(st.sampled_from([2, 8])) if len(spec.payload) < 65536 else 8)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Spec], bool]:
    specs: list[Spec] = []
    for _ in range(draw(st.integers(0, 6))):
        shape = draw(st.integers(0, 9))
        if shape < 6:
            specs += draw(message_specs())
        elif shape < 9:
            specs.append(draw(control_spec()))
        else:
            specs.append(draw(random_spec()))
    if draw(st.integers(0, 2)) == 0:
        specs.append(draw(control_spec().filter(lambda spec: spec.opcode == OP_CLOSE)))
    # at most one mutated frame per stream, so each mutation is often the first fault
    if specs and draw(st.booleans()):  # type: ignore[arg-type]
        index = draw(st.integers(0, len(specs) - 1))
        specs[index] = draw(mutated(specs[index]))
    specs = [dataclasses.replace(spec, key=draw(st.binary(min_size=4, max_size=4))) for spec in specs]
    return specs, draw(st.integers(0, 9)) == 0


@FUZZ
@given(streams(), st.lists(st.integers(0, 1 << 16), max_size=6), st.lists(st.integers(0, 1 << 16), max_size=6))
def test_differential_against_wsproto(
    stream: tuple[list[Spec], bool], cuts_ours: list[int], cuts_theirs: list[int]
) -> None:
    specs, msb_tail = stream
    ours = serialize(specs, msb_tail, for_wsproto=False)
    theirs = serialize(specs, msb_tail, for_wsproto=True)
    # the cut points are drawn in a large range and folded into each stream
    ours_chunks = split_at(ours, [cut % (len(ours) + 1) for cut in cuts_ours])
    theirs_chunks = split_at(theirs, [cut % (len(theirs) + 1) for cut in cuts_theirs])
    assert run_syncaerys(ours_chunks) == run_wsproto(theirs_chunks)


def test_differential_large_frames() -> None:
    specs = [
        Spec(OP_BINARY, binary_data(65536)),
        Spec(OP_TEXT, ("é" * 40000).encode(), fin=False),
        Spec(OP_PING, b"x"),
        Spec(OP_CONT, ("ü" * 33000).encode()),
        Spec(OP_CLOSE, close_payload(4001, b"done")),
    ]
    data = serialize(specs, False, for_wsproto=False)
    events, outcome = run_syncaerys(split_at(data, [3, 9, 70000, 100000]))
    assert (events, outcome) == run_wsproto(split_at(data, [1, 65536, 65547]))
    assert events == [
        ("message", OP_BINARY, binary_data(65536)),
        ("control", OP_PING, b"x"),
        ("message", OP_TEXT, "é" * 40000 + "ü" * 33000),
        ("close", 4001, "done"),
    ]
    assert outcome == ("closed",)


def test_differential_every_close_code() -> None:
    for code in [*range(0, 5100), 65535]:
        for reason in (b"", b"bye", b"\xff"):
            specs = [Spec(OP_CLOSE, close_payload(code, reason))]
            ours = serialize(specs, False, for_wsproto=False)
            theirs = serialize(specs, False, for_wsproto=True)
            assert run_syncaerys([ours]) == run_wsproto([theirs]), (code, reason)


# The differences by design, shown on their own (see the list above).


@pytest.mark.parametrize("length_bytes", [2, 8])
def test_non_minimal_length_accepted_by_syncaerys_refused_by_wsproto(length_bytes: int) -> None:
    data = client_frame(OP_TEXT, b"hello", length_bytes=length_bytes)
    assert run_syncaerys([data]) == ([("message", OP_TEXT, "hello")], ("open",))
    assert run_wsproto([data]) == ([], ("error", 1002))


def test_close_code_1014_accepted_by_syncaerys_refused_by_wsproto() -> None:
    data = client_frame(OP_CLOSE, close_payload(1014, b"bad gateway"))
    assert parse(data) == [Frame(OP_CLOSE, "bad gateway", True, 1014)]
    assert run_wsproto([data]) == ([], ("error", 1002))


def test_truncated_stream_differences() -> None:
    # A continuation frame with no message open, of which only the header has
    # arrived: syncaerys decides from the header, wsproto waits for payload.
    data = header_only(OP_CONT, 10)
    assert run_syncaerys([data]) == ([], ("error", 1002))
    assert run_wsproto([data]) == ([], ("open",))
    # Invalid UTF-8 at the start of a frame whose end has not arrived: both
    # validate the partial payload.
    data = client_frame(OP_TEXT, b"\xff" + b"a" * 20)[:10]
    assert run_syncaerys([data]) == ([], ("error", 1007))
    assert run_wsproto([data]) == ([], ("error", 1007))


# -- robustness


@st.composite
def garbage(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    # structured garbage: frames with random fields, then random bit flips
    specs = [draw(random_spec()) for _ in range(draw(st.integers(1, 5)))]
    data = bytearray(serialize(specs, False, for_wsproto=False))
    for bit in draw(st.lists(st.integers(0, len(data) * 8 - 1), max_size=4)):
        data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


@FUZZ
@given(garbage(), st.lists(st.integers(0, 400), max_size=5))
def test_garbage_raises_only_protocol_error(data: bytes, cuts: list[int]) -> None:
    parser = FrameParser(max_frame_size=1 << 20, max_message_size=1 << 20)
    returned = 0
    try:
        for chunk in split_at(data, cuts):
            parser.feed(chunk)
            while parser.next_frame() is not None:
                returned += 1
                # every frame consumes at least a 2-byte header and a 4-byte mask key
                assert returned * 6 <= len(data)
        assert parser.next_frame() is None
    except ProtocolError as error:
        assert error.code in (1002, 1003, 1007, 1009)
        assert error.reason


# -- a large frame read straight into its own buffer (receive_buffer / received_into)


def read_into(parser: FrameParser, data: bytes, piece: int) -> None:
    """Feed ``data`` as a connection does: into receive_buffer() once there is one, else feed()."""
    pos = 0
    while pos < len(data):
        view = parser.receive_buffer()
        if view is None:
            parser.feed(data[pos : pos + piece])
            pos += piece
            continue
        count = min(piece, len(view), len(data) - pos)
        view[:count] = data[pos : pos + count]
        pos += count
        parser.received_into(count)


@pytest.mark.parametrize("piece", [1000, 4096, 65536])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_a_large_frame_read_into_its_own_buffer(opcode: int, piece: int) -> None:
    payload = ascii_text(200_000).encode() if opcode == OP_TEXT else binary_data(200_000)
    parser = FrameParser()
    stream = client_frame(opcode, payload) + client_frame(OP_BINARY, b"next")
    read_into(parser, stream[:1000], 1000)
    assert parser.next_frame() is None
    view = parser.receive_buffer()
    assert view is not None and len(view) == len(payload) - (1000 - 14)
    assert parser.missing == len(view)
    assert parser.receiving
    read_into(parser, stream[1000:], piece)
    expected = payload.decode() if opcode == OP_TEXT else payload
    assert drain(parser) == [Frame(opcode, expected, True), Frame(OP_BINARY, b"next", True)]
    assert parser.receive_buffer() is None
    assert not parser.receiving


def test_receive_buffer_is_none_until_the_header_is_whole() -> None:
    parser = FrameParser()
    frame = client_frame(OP_BINARY, binary_data(100_000))
    parser.feed(frame[:5])  # the 64-bit length is not there yet
    assert parser.next_frame() is None
    assert parser.receive_buffer() is None
    parser.feed(frame[5:12])  # the length but not the whole mask key
    assert parser.next_frame() is None
    assert parser.receive_buffer() is None
    parser.feed(frame[12:20])
    assert parser.next_frame() is None
    view = parser.receive_buffer()
    assert view is not None and len(view) == len(frame) - 20
    view[:] = frame[20:]
    parser.received_into(len(view))
    assert drain(parser) == [Frame(OP_BINARY, binary_data(100_000), True)]


def test_feed_while_a_frame_has_its_own_buffer_fills_it_first() -> None:
    parser = FrameParser()
    payload = binary_data(70_000)
    stream = client_frame(OP_BINARY, payload) + client_frame(OP_TEXT, b"after")
    parser.feed(stream[:3000])
    assert parser.next_frame() is None
    assert parser.receive_buffer() is not None
    parser.feed(stream[3000:])  # the rest and the next frame, as one read
    assert drain(parser) == [Frame(OP_BINARY, payload, True), Frame(OP_TEXT, "after", True)]


def test_invalid_utf8_read_into_a_frames_own_buffer_fails_at_once() -> None:
    encoded = bytearray(b"a" * 100_000)
    encoded[50_000] = 0xC0
    frame = client_frame(OP_TEXT, bytes(encoded))
    parser = FrameParser()
    parser.feed(frame[:2000])
    assert parser.next_frame() is None
    read_into(parser, frame[2000:60_000], 4096)
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert (info.value.code, info.value.reason) == (1007, BAD_UTF8)


def test_received_into_more_than_the_buffer_is_refused() -> None:
    parser = FrameParser()
    with pytest.raises(ValueError, match="receive_buffer"):
        parser.received_into(1)
    parser.feed(client_frame(OP_BINARY, binary_data(5000))[:100])
    assert parser.next_frame() is None
    view = parser.receive_buffer()
    assert view is not None
    with pytest.raises(ValueError, match="receive_buffer"):
        parser.received_into(len(view) + 1)


def test_a_frame_above_direct_max_is_collected_as_it_arrives() -> None:
    parser = FrameParser()
    parser.feed(header_only(OP_BINARY, DIRECT_MAX + 1) + b"\x00" * 100)
    assert parser.next_frame() is None
    assert parser.receive_buffer() is None
    assert parser.missing == DIRECT_MAX + 1 - 100
