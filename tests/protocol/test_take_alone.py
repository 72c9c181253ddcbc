"""FrameParser.take_alone: one whole message parsed where it was read, or nothing changed.

The connection calls it on a read that came while nothing was buffered. Its
answer must be the frame that feeding the same bytes would give, and when it
declines, feeding them must give what it always gave. Both parsing paths.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncaerys.exceptions import ProtocolError
from syncaerys.protocol.deflate import DeflateParams
from syncaerys.protocol.deflate import Inflater
from syncaerys.protocol.frames import OP_BINARY
from syncaerys.protocol.frames import OP_CONT
from syncaerys.protocol.frames import OP_PING
from syncaerys.protocol.frames import OP_TEXT
from syncaerys.protocol.parser import Frame
from syncaerys.protocol.parser import FrameParser
from tests.parse_paths import parse_path  # noqa: F401  (the fixture)
from tests.utils import client_frame

pytestmark = pytest.mark.usefixtures("parse_path")


def fed(data: bytes) -> list[Frame] | ProtocolError:
    """What a fresh parser gives for ``data`` fed at once: its frames, or the error it raised."""
    parser = FrameParser()
    parser.feed(data)
    frames = []
    try:
        while (frame := parser.next_frame()) is not None:
            frames.append(frame)
    except ProtocolError as error:
        return error
    return frames


def test_one_whole_text_or_binary_message_is_taken_as_feeding_it_would_give() -> None:
    for opcode, payload, data in ((OP_TEXT, "héllo", "héllo".encode()), (OP_BINARY, b"\x00\xff", b"\x00\xff")):
        frame = FrameParser().take_alone(memoryview(client_frame(opcode, data)))
        assert frame == Frame(opcode, payload, True)
        assert fed(client_frame(opcode, data)) == [frame]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(client_frame(OP_TEXT, b"a") + client_frame(OP_TEXT, b"b"), id="two frames"),
        pytest.param(client_frame(OP_TEXT, b"abcdef")[:-2], id="a frame cut short"),
        pytest.param(client_frame(OP_TEXT, b"ab", fin=False), id="a first fragment"),
        pytest.param(client_frame(OP_PING, b"p"), id="a ping"),
        pytest.param(client_frame(OP_TEXT, b"\xff\xfe"), id="invalid UTF-8"),
        pytest.param(client_frame(OP_TEXT, b"a", masked=False), id="unmasked"),
        pytest.param(b"\x81", id="one byte"),
    ],
)
def test_anything_else_is_declined_and_feeding_it_gives_what_it_always_gave(data: bytes) -> None:
    parser = FrameParser()
    assert parser.take_alone(memoryview(data)) is None
    assert not parser.receiving
    parser.feed(data)
    frames = []
    try:
        while (frame := parser.next_frame()) is not None:
            frames.append(frame)
        outcome: list[Frame] | ProtocolError = frames
    except ProtocolError as error:
        outcome = error
    expected = fed(data)
    if isinstance(expected, ProtocolError):
        assert isinstance(outcome, ProtocolError) and (outcome.code, outcome.reason) == (expected.code, expected.reason)
    else:
        assert outcome == expected


def test_declined_while_a_fragmented_message_or_bytes_are_buffered() -> None:
    whole = memoryview(client_frame(OP_CONT, b"end"))
    parser = FrameParser()
    parser.feed(client_frame(OP_TEXT, b"start", fin=False))
    assert parser.next_frame() == Frame(OP_TEXT, "start", False)
    assert parser.take_alone(whole) is None  # a message is in progress
    parser.feed(bytes(whole))
    assert parser.next_frame() == Frame(OP_CONT, "end", True)
    parser.feed(client_frame(OP_TEXT, b"xyz")[:3])
    assert parser.take_alone(memoryview(client_frame(OP_TEXT, b"a"))) is None  # bytes wait in the parser


def test_declined_with_permessage_deflate() -> None:
    parser = FrameParser(inflater=Inflater(DeflateParams(False, False, 15, False)))
    assert parser.take_alone(memoryview(client_frame(OP_TEXT, b"plain"))) is None


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 8, 9, 10, 3]), st.binary(max_size=200), st.booleans()), max_size=3))
def test_taken_means_exactly_what_feeding_gives(frames: list[tuple[int, bytes, bool]]) -> None:
    data = b"".join(client_frame(opcode, payload, fin=fin) for opcode, payload, fin in frames)
    for cut in (len(data), len(data) // 2):
        piece = data[:cut]
        taken = FrameParser().take_alone(memoryview(piece))
        if taken is not None:
            assert fed(piece) == [taken]
