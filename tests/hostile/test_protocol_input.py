"""Hostile or unusual frames at the sans-I/O level."""

from __future__ import annotations

import zlib

import pytest

from syncaerys.exceptions import ProtocolError
from syncaerys.protocol.deflate import DeflateParams
from syncaerys.protocol.deflate import Inflater
from syncaerys.protocol.parser import FrameParser
from tests.utils import client_frame

OP_CONT = 0x0
OP_TEXT = 0x1
RSV1 = 4  # client_frame's rsv argument: bits 6-4 of the first byte, RSV1 = 0b100

PARAMS = DeflateParams(
    server_no_context_takeover=False,
    client_no_context_takeover=False,
    server_window_bits=15,
    announce_server_window=False,
)


def sync_flushed(compressor: zlib._Compress, data: bytes) -> bytes:
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def frames(parser: FrameParser, data: bytes) -> list[str | bytes]:
    parser.feed(data)
    out = []
    while (frame := parser.next_frame()) is not None:
        out.append(frame.data)
    return out


def test_a_bfinal_block_with_context_takeover_does_not_empty_later_messages() -> None:
    # RFC 7692 7.2.3.3: a message may end with a DEFLATE block with BFINAL=1; the sender
    # then starts a new stream for the next message.
    parser = FrameParser(inflater=Inflater(PARAMS))
    first = zlib.compressobj(wbits=-15)
    final = first.compress(b"hello, final block") + first.flush(zlib.Z_FINISH)
    got = frames(parser, client_frame(OP_TEXT, final, rsv=RSV1))
    second = zlib.compressobj(wbits=-15)
    got += frames(parser, client_frame(OP_TEXT, sync_flushed(second, b"and after it"), rsv=RSV1))
    got += frames(parser, client_frame(OP_TEXT, sync_flushed(second, b"and after it, again"), rsv=RSV1))
    assert got == ["hello, final block", "and after it", "and after it, again"]


def test_a_bfinal_message_still_respects_the_size_limit() -> None:
    parser = FrameParser(max_message_size=1000, inflater=Inflater(PARAMS))
    first = zlib.compressobj(wbits=-15)
    frames(parser, client_frame(OP_TEXT, first.compress(b"x") + first.flush(zlib.Z_FINISH), rsv=RSV1))
    bomb = zlib.compressobj(wbits=-15)
    with pytest.raises(ProtocolError) as error:
        frames(parser, client_frame(OP_TEXT, sync_flushed(bomb, b"a" * 100_000), rsv=RSV1))
    assert error.value.code == 1009


@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "continuation"])
def test_invalid_utf8_fails_as_soon_as_its_bytes_arrive(fragmented: bool) -> None:
    # Autobahn 6.4.3/6.4.4: a frame sent in chops; the invalid sequence is in the second chop.
    valid = "κόσμε".encode()
    invalid = b"\xf4\x90\x80\x80"  # U+110000: out of range
    parser = FrameParser()
    if fragmented:
        assert frames(parser, client_frame(OP_TEXT, b"start ", fin=False)) == ["start "]
    frame = client_frame(OP_CONT if fragmented else OP_TEXT, valid + invalid + valid * 100)
    cut = len(frame) - len(valid * 100) - len(invalid) - len(valid)
    assert frames(parser, frame[:cut]) == []
    parser.feed(frame[cut : cut + len(valid) + len(invalid)])
    with pytest.raises(ProtocolError) as error:
        parser.next_frame()
    assert error.value.code == 1007


def test_a_character_split_across_chops_and_frames_is_valid() -> None:
    text = "a€b𝄞c" * 50
    payload = text.encode()
    parser = FrameParser()
    split = 3  # inside "€"
    got = frames(parser, client_frame(OP_TEXT, payload[:split], fin=False))
    frame = client_frame(OP_CONT, payload[split:])
    for i in range(0, len(frame), 7):
        got += frames(parser, frame[i : i + 7])
    assert "".join(map(str, got)) == text


def test_fuzz_regression_a_final_block_then_an_empty_final_frame() -> None:
    # Found by fuzz/inflater.py: a message whose whole BFINAL stream is in its first
    # frame and whose last frame is empty; the tail RFC 7692 appends must not be fed to
    # the next stream.
    inflater = Inflater(PARAMS)
    first = zlib.compressobj(wbits=-15)
    stream = first.compress(b"all in the first frame") + first.flush(zlib.Z_FINISH)
    assert inflater.inflate(stream, False, 1 << 16) + inflater.inflate(b"", True, 1 << 16) == b"all in the first frame"
    second = zlib.compressobj(wbits=-15)
    assert inflater.inflate(sync_flushed(second, b"next message"), True, 1 << 16) == b"next message"
