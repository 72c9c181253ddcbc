"""The frame encoder, message fragmentation, close frames and close-code rules.

What syncaerys encodes is also parsed back by wsproto acting as a client, the
independent reference.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from wsproto.frame_protocol import CloseReason
from wsproto.frame_protocol import FrameProtocol
from wsproto.frame_protocol import Opcode
from wsproto.frame_protocol import ParseFailed

from syncaerys.protocol.frames import OP_BINARY
from syncaerys.protocol.frames import OP_CLOSE
from syncaerys.protocol.frames import OP_CONT
from syncaerys.protocol.frames import OP_PING
from syncaerys.protocol.frames import OP_PONG
from syncaerys.protocol.frames import OP_TEXT
from syncaerys.protocol.frames import SENDMSG_FROM
from syncaerys.protocol.frames import CloseCode
from syncaerys.protocol.frames import OutFrame
from syncaerys.protocol.frames import encode_close
from syncaerys.protocol.frames import encode_frame
from syncaerys.protocol.frames import encode_frames
from syncaerys.protocol.frames import encode_message
from syncaerys.protocol.frames import frame_length
from syncaerys.protocol.frames import is_valid_peer_close_code
from syncaerys.protocol.frames import validate_close_arguments

AUTO_FRAME_SIZE = 65527  # the auto_frame_size default (docs/reference/options.md), (64 << 10) - 9


def test_opcode_values() -> None:
    assert (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG) == (0x0, 0x1, 0x2, 0x8, 0x9, 0xA)


# -- encode_frame


@pytest.mark.parametrize(
    ("length", "second_byte", "extended"),
    [
        (0, 0, b""),
        (1, 1, b""),
        (125, 125, b""),
        (126, 126, b"\x00\x7e"),
        (127, 126, b"\x00\x7f"),
        (65535, 126, b"\xff\xff"),
        (65536, 127, b"\x00\x00\x00\x00\x00\x01\x00\x00"),
        (70000, 127, (70000).to_bytes(8, "big")),
    ],
)
def test_encode_frame_length_forms(length: int, second_byte: int, extended: bytes) -> None:
    payload = bytes(index % 256 for index in range(length))
    frame = encode_frame(OP_BINARY, payload)
    header = bytes((0x82, second_byte)) + extended  # FIN, no RSV, no mask bit (server frames are unmasked)
    assert frame[: len(header)] == header
    assert frame[len(header) :] == payload
    assert len(frame) == len(header) + length


@pytest.mark.parametrize(
    ("opcode", "fin", "first_byte"),
    [
        (OP_TEXT, True, 0x81),
        (OP_TEXT, False, 0x01),
        (OP_BINARY, True, 0x82),
        (OP_CONT, False, 0x00),
        (OP_CONT, True, 0x80),
        (OP_CLOSE, True, 0x88),
        (OP_PING, True, 0x89),
        (OP_PONG, True, 0x8A),
    ],
)
def test_encode_frame_first_byte(opcode: int, fin: bool, first_byte: int) -> None:
    assert encode_frame(opcode, b"abc", fin) == bytes((first_byte, 3)) + b"abc"


def test_encode_frame_default_is_final() -> None:
    assert encode_frame(OP_TEXT, b"hi") == b"\x81\x02hi"


# -- encode_message


def test_encode_message_splits_131046_bytes_in_two_equal_fragments() -> None:
    payload = bytes(index % 251 for index in range(131046))
    frames = encode_message(OP_BINARY, payload, AUTO_FRAME_SIZE)
    assert len(frames) == 2
    header = b"\x7e" + (65523).to_bytes(2, "big")
    assert frames[0][:4] == b"\x02" + header  # BINARY, no FIN
    assert frames[1][:4] == b"\x80" + header  # CONT, FIN
    assert frames[0][4:] + frames[1][4:] == payload


def test_encode_message_text_fragments_start_with_text_then_continuation() -> None:
    frames = encode_message(OP_TEXT, b"a" * 10, 3)
    # ceil(10 / 3) = 4 slices of ceil(10 / 4) = 3 bytes
    assert [frame[0] for frame in frames] == [0x01, 0x00, 0x00, 0x80]
    assert [frame[1] for frame in frames] == [3, 3, 3, 1]


@pytest.mark.parametrize("auto_frame_size", [AUTO_FRAME_SIZE, 125, 1])
def test_encode_message_at_the_threshold_is_one_frame(auto_frame_size: int) -> None:
    payload = b"x" * auto_frame_size
    assert encode_message(OP_TEXT, payload, auto_frame_size) == [encode_frame(OP_TEXT, payload)]


def test_encode_message_one_over_the_threshold_is_two_frames() -> None:
    frames = encode_message(OP_TEXT, b"x" * (AUTO_FRAME_SIZE + 1), AUTO_FRAME_SIZE)
    assert len(frames) == 2
    assert frames[0][0] == 0x01
    assert frames[1][0] == 0x80


def test_encode_message_without_threshold_is_one_frame() -> None:
    payload = b"y" * 200000
    assert encode_message(OP_BINARY, payload, None) == [encode_frame(OP_BINARY, payload)]


def test_encode_message_empty_payload() -> None:
    assert encode_message(OP_TEXT, b"", AUTO_FRAME_SIZE) == [b"\x81\x00"]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=600), st.integers(1, 300), st.sampled_from([OP_TEXT, OP_BINARY]))
def test_encode_message_fragments(payload: bytes, auto_frame_size: int, opcode: int) -> None:
    frames = encode_message(opcode, payload, auto_frame_size)
    slices = max(1, -(-len(payload) // auto_frame_size))
    assert 1 <= len(frames) <= slices
    pieces = [parse_server_frame(frame) for frame in frames]
    assert b"".join(piece for _, _, piece in pieces) == payload
    assert [first & 0x0F for first, _, _ in pieces] == [opcode] + [OP_CONT] * (len(frames) - 1)
    assert [bool(first & 0x80) for first, _, _ in pieces] == [False] * (len(frames) - 1) + [True]
    assert all(len(piece) <= auto_frame_size for _, _, piece in pieces)
    # the fragments are of equal size, the last one possibly shorter
    sizes = [len(piece) for _, _, piece in pieces]
    assert all(size == sizes[0] for size in sizes[:-1])
    assert sizes[-1] <= sizes[0]


def parse_server_frame(frame: bytes) -> tuple[int, int, bytes]:
    """(first byte, header length, payload) of one unmasked frame, decoded by hand."""
    length = frame[1]
    assert not length & 0x80
    offset = 2
    if length == 126:
        length = int.from_bytes(frame[2:4], "big")
        offset = 4
    elif length == 127:
        length = int.from_bytes(frame[2:10], "big")
        offset = 10
    assert len(frame) == offset + length
    return frame[0], offset, frame[offset:]


# -- encode_close


@pytest.mark.parametrize("code", [None, 1005, CloseCode.NONE])
def test_encode_close_without_code_is_empty(code: int | None) -> None:
    assert encode_close(code) == b"\x88\x00"
    assert encode_close(code, b"ignored") == b"\x88\x00"


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (1000, b"", b"\x88\x02\x03\xe8"),
        (1000, b"bye", b"\x88\x05\x03\xe8bye"),
        (1009, b"Received payload exceeds maximum allowable size", None),
        (4999, "é".encode(), b"\x88\x04\x13\x87\xc3\xa9"),
    ],
)
def test_encode_close_with_code(code: int, reason: bytes, expected: bytes | None) -> None:
    frame = encode_close(code, reason)
    if expected is not None:
        assert frame == expected
    assert frame[0] == 0x88
    assert frame[1] == 2 + len(reason)
    assert frame[2:4] == code.to_bytes(2, "big")
    assert frame[4:] == reason


# -- close-code rules (RFC 6455 7.4)


def test_is_valid_peer_close_code_over_the_whole_range() -> None:
    for code in range(70000):
        expected = 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
        assert is_valid_peer_close_code(code) is expected, code


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_validate_close_arguments_accepts_sendable_codes(code: int) -> None:
    assert validate_close_arguments(code, "") == b""
    assert validate_close_arguments(code, "au revoir ✓") == "au revoir ✓".encode()


@pytest.mark.parametrize("code", [-1, 0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_validate_close_arguments_refuses_unsendable_codes(code: int) -> None:
    with pytest.raises(ValueError, match=str(code)):
        validate_close_arguments(code, "")


@pytest.mark.parametrize("code", ["1000", 1000.0, None])
def test_validate_close_arguments_refuses_non_integers(code: object) -> None:
    with pytest.raises(ValueError):
        validate_close_arguments(code, "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "ok"),
    [
        ("r" * 123, True),
        ("r" * 124, False),
        ("é" * 61 + "r", True),  # 123 bytes
        ("é" * 62, False),  # 62 characters, 124 bytes
        ("😀" * 30 + "abc", True),  # 123 bytes
        ("😀" * 31, False),  # 124 bytes
    ],
)
def test_validate_close_arguments_reason_length_in_utf8_bytes(reason: str, ok: bool) -> None:
    if ok:
        assert validate_close_arguments(1000, reason) == reason.encode()
        assert len(encode_close(1000, reason.encode())) == 2 + 125
    else:
        with pytest.raises(ValueError, match="124 bytes"):
            validate_close_arguments(1000, reason)


# -- wsproto, as a client, reads what syncaerys writes


def wsproto_client_read(data: bytes) -> list[tuple[Opcode, object, bool]]:
    """(opcode, payload, message finished) per whole frame, as a wsproto client parses ``data``."""
    client = FrameProtocol(client=True, extensions=[])
    client.receive_bytes(data)
    out: list[tuple[Opcode, object, bool]] = []
    payload: object = None
    for frame in client.received_frames():
        # wsproto may hand out a frame in pieces; put each frame back together
        payload = frame.payload if payload is None else payload + frame.payload  # type: ignore[operator]
        if frame.frame_finished:
            out.append((frame.opcode, payload, frame.message_finished))
            payload = None
    assert payload is None
    return out


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_wsproto_reads_encode_frame(length: int) -> None:
    text = ("abcdé" * (length // 5 + 1)).encode()[:length].decode("utf-8", errors="ignore")
    binary = bytes(index % 256 for index in range(length))
    data = encode_frame(OP_TEXT, text.encode()) + encode_frame(OP_BINARY, binary)
    assert wsproto_client_read(data) == [(Opcode.TEXT, text, True), (Opcode.BINARY, binary, True)]


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG])
@pytest.mark.parametrize("payload", [b"", b"1", b"*" * 125])
def test_wsproto_reads_control_frames(opcode: int, payload: bytes) -> None:
    assert wsproto_client_read(encode_frame(opcode, payload)) == [(Opcode(opcode), payload, True)]


@pytest.mark.parametrize("length", [131046, 65528, 200001])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_wsproto_reassembles_encode_message(opcode: int, length: int) -> None:
    payload = ("ü" * length).encode()[:length] if opcode == OP_TEXT else bytes(i % 256 for i in range(length))
    if opcode == OP_TEXT:
        payload = payload.decode("utf-8", errors="ignore").encode()
    frames = encode_message(opcode, payload, AUTO_FRAME_SIZE)
    # a pong between the fragments, as the server sends control frames at once
    data = frames[0] + encode_frame(OP_PONG, b"p") + b"".join(frames[1:])
    read = wsproto_client_read(data)
    data_frames = [frame for frame in read if frame[0] is not Opcode.PONG]
    assert read[1] == (Opcode.PONG, b"p", True)
    assert all(frame[0] is Opcode(opcode) for frame in data_frames)
    assert [finished for _, _, finished in data_frames] == [False] * (len(frames) - 1) + [True]
    pieces = [piece for _, piece, _ in data_frames]
    if opcode == OP_TEXT:
        assert "".join(pieces) == payload.decode()  # type: ignore[arg-type]
    else:
        assert b"".join(pieces) == payload  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 4999])
def test_wsproto_reads_encode_close(code: int) -> None:
    reason = "fermé ✓"
    ((opcode, payload, _),) = wsproto_client_read(encode_close(code, reason.encode()))
    assert opcode is Opcode.CLOSE
    assert payload == (code, reason)


def test_wsproto_reads_an_empty_close_as_1005() -> None:
    assert wsproto_client_read(encode_close(None)) == [(Opcode.CLOSE, (CloseReason.NO_STATUS_RCVD, ""), True)]


def test_wsproto_refuses_close_code_1014() -> None:
    # A known difference (see test_parser.py): RFC 6455 7.4.2 lets syncaerys send and
    # accept 1014, which wsproto's CloseReason does not know.
    with pytest.raises(ParseFailed):
        wsproto_client_read(encode_close(1014))


# -- encode_frames: header and payload apart for sendmsg


def _joined(frames: list[OutFrame]) -> bytes:
    return b"".join(frame if isinstance(frame, bytes) else bytes(frame[0]) + bytes(frame[1]) for frame in frames)


@pytest.mark.parametrize("size", [0, 125, SENDMSG_FROM - 1, SENDMSG_FROM, 65535, 65536, 131046, 200_000])
@pytest.mark.parametrize("auto_frame_size", [AUTO_FRAME_SIZE, None, 4096])
def test_encode_frames_writes_what_encode_message_does(size: int, auto_frame_size: int | None) -> None:
    payload = bytes(index % 251 for index in range(size))
    frames = encode_frames(OP_BINARY, payload, auto_frame_size)
    expected = encode_message(OP_BINARY, payload, auto_frame_size)
    assert len(frames) == len(expected)
    assert [frame_length(frame) for frame in frames] == [len(frame) for frame in expected]
    assert _joined(frames) == b"".join(expected)


def test_encode_frames_keeps_large_payloads_apart_without_copying_them() -> None:
    payload = b"z" * 131046
    frames = encode_frames(OP_BINARY, payload, AUTO_FRAME_SIZE)
    assert all(isinstance(frame, tuple) for frame in frames)
    heads = [frame[0] for frame in frames if isinstance(frame, tuple)]
    bodies = [frame[1] for frame in frames if isinstance(frame, tuple)]
    assert heads == [b"\x02\x7e" + (65523).to_bytes(2, "big"), b"\x80\x7e" + (65523).to_bytes(2, "big")]
    # Views of the message itself, not copies of it.
    assert all(isinstance(body, memoryview) and body.obj is payload for body in bodies)
    # A payload under SENDMSG_FROM stays one bytes with its header.
    assert encode_frames(OP_TEXT, b"small", AUTO_FRAME_SIZE) == [b"\x81\x05small"]


def test_encode_frames_marks_only_the_first_fragment_compressed() -> None:
    frames = encode_frames(OP_BINARY, b"c" * 10000, 4000, compressed=True)
    firsts = [(frame if isinstance(frame, bytes) else frame[0])[0] for frame in frames]
    assert firsts == [0x42, 0x00, 0x80]
    assert _joined(frames) == b"".join(encode_message(OP_BINARY, b"c" * 10000, 4000, compressed=True))
