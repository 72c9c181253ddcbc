"""The incremental frame parser for client-to-server frames (sans-I/O).

Feed it bytes as they arrive with :meth:`FrameParser.feed`, then call
:meth:`FrameParser.next_frame` until it returns ``None`` (it needs more bytes).
Every rule of RFC 6455 that a server must enforce is checked here, and limits
are decided from the frame header, before the payload is buffered. A violation
raises :class:`~syncaerys.exceptions.ProtocolError` carrying the close code and
reason to answer with; the parser is unusable afterwards.

Text payloads are validated as UTF-8 incrementally and handed out as ``str``
chunks that never split a character; binary payloads as ``bytes``.
"""

from __future__ import annotations

import codecs
from typing import NamedTuple

from ..exceptions import ProtocolError
from .deflate import Inflater
from .frames import OP_BINARY
from .frames import OP_CLOSE
from .frames import OP_CONT
from .frames import OP_TEXT
from .frames import is_valid_peer_close_code
from .mask import apply_mask

__all__ = ["Frame", "FrameParser"]

_utf8_decoder = codecs.getincrementaldecoder("utf-8")

# Payload size from which masking reads a memoryview of the buffer.
_VIEW_AT = 65536


class Frame(NamedTuple):
    """One parsed frame.

    ``data`` is ``str`` for frames of a text message (continuations included),
    ``bytes`` for binary, ping and pong frames, and the reason for a close
    frame, whose code is ``code`` (1005 for an empty close).
    """

    opcode: int
    data: str | bytes
    fin: bool
    code: int = 0


class FrameParser:
    """Parses masked client frames and enforces sequencing, size and type rules.

    :param max_frame_size: largest frame payload accepted (1009 above); ``None``
        for no limit.
    :param max_message_size: largest message (sum of its fragments) accepted
        (1009 above); ``None`` for no limit.
    :param text_only: reject binary messages with 1003.

    Not thread-safe (one caller at a time: the client's reader); never blocks.
    """

    __slots__ = (
        "_buf",
        "_compressed",
        "_decoder",
        "_error",
        "_inflated_size",
        "_inflater",
        "_max_frame",
        "_max_message",
        "_message_opcode",
        "_message_size",
        "_more",
        "_more_len",
        "_partial",
        "_pos",
        "_text_only",
        "_want",
        "inflated_bytes",
    )

    def __init__(
        self,
        max_frame_size: int | None = None,
        max_message_size: int | None = None,
        text_only: bool = False,
        inflater: Inflater | None = None,
    ) -> None:
        self._max_frame = max_frame_size if max_frame_size is not None else 1 << 63
        self._max_message = max_message_size if max_message_size is not None else 1 << 63
        self._text_only = text_only
        # Bytes not yet parsed are self._buf[self._pos:] followed by self._more;
        # self._more collects reads until the frame being waited for is whole,
        # so a large frame costs one join instead of a copy per read.
        self._buf = b""
        self._pos = 0
        self._more: list[bytes] = []
        self._more_len = 0
        self._want = 2
        # The message being received: its opcode (0 when none), size so far and
        # UTF-8 decoder when it is a fragmented text message.
        self._message_opcode = 0
        self._message_size = 0
        self._decoder: codecs.IncrementalDecoder | None = None
        # permessage-deflate, when negotiated: RSV1 marks a compressed message.
        self._inflater = inflater
        self._compressed = False
        self._inflated_size = 0
        #: Bytes produced by inflation so far (for budgets charged on what the client really sends).
        self.inflated_bytes = 0
        # A text frame that is arriving in pieces: its payload is checked as UTF-8
        # as the bytes come (Autobahn 6.4.3/6.4.4: fail fast, not once it is whole).
        self._partial: _PartialText | None = None
        self._error: ProtocolError | None = None

    @property
    def in_message(self) -> bool:
        """Whether a fragmented data message has started and not yet finished."""
        return self._message_opcode != 0

    @property
    def receiving(self) -> bool:
        """Whether a frame or a fragmented message has started and not yet finished."""
        return self._message_opcode != 0 or self._pos < len(self._buf) or self._more_len > 0

    @property
    def missing(self) -> int:
        """How many more bytes the frame (or frame header) being waited for needs; 0 when one may be ready."""
        missing = self._want - (len(self._buf) - self._pos) - self._more_len
        return missing if missing > 0 else 0

    def feed(self, data: bytes) -> None:
        """Add bytes read from the network; then call :meth:`next_frame`."""
        if self._partial is not None and self._error is None:
            try:
                self._partial.check(data)
            except ProtocolError as error:
                self._error = error
        if self._pos >= len(self._buf) and not self._more:
            self._buf = data
            self._pos = 0
        else:
            self._more.append(data)
            self._more_len += len(data)

    # Above the size limits on purpose: every frame runs it, and a call per step costs
    # each frame (benchmarks/hotpath_bench.py measures it).
    def next_frame(self) -> Frame | None:  # noqa: C901, PLR0912, PLR0915
        """Return the next whole frame, or ``None`` when more bytes are needed.

        Raises :class:`ProtocolError` on any violation; the caller must then
        close the connection with its ``code`` and stop parsing.
        """
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail + self._more_len < self._want:
            return None
        if self._more:
            buf = self._buf = buf[pos:] + b"".join(self._more)
            pos = self._pos = 0
            avail = len(buf)
            self._more = []
            self._more_len = 0
        if avail < 2:
            self._want = 2
            return None
        first = buf[pos]
        second = buf[pos + 1]
        length = second & 0x7F
        header = 6
        if length == 126:
            header = 8
            if avail < 4:
                self._want = 4
                return None
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
        elif length == 127:
            header = 14
            if avail < 10:
                self._want = 10
                return None
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        opcode = first & 0x0F
        fin = first & 0x80 != 0
        self._check_header(first, second, opcode, fin, length)
        total = header + length
        if avail < total:
            if avail < header:
                # Look again once the mask key is here: a text frame is checked as it arrives.
                self._want = header
                return None
            self._want = total
            if self._partial is None and not self._compressed_frame(first, opcode) and self._is_text(opcode):
                start = pos + header
                self._partial = _PartialText(buf[start - 4 : start], length, self._decoder_state(opcode))
                self._partial.check(buf[start : pos + avail])
            return None
        self._partial = None
        if pos + total == len(buf):
            # All parsed: let go of the buffer now (it may hold a large frame)
            # rather than keep it until the next read, however long that takes.
            self._buf = b""
            self._pos = 0
        else:
            self._pos = pos + total
        self._want = 2
        start = pos + header
        # A large payload is masked straight out of the buffer (no copy first);
        # for a small one, slicing bytes is cheaper than making a memoryview.
        data = memoryview(buf)[start : pos + total] if length >= _VIEW_AT else buf[start : pos + total]
        payload = apply_mask(data, buf[start - 4 : start])
        if opcode == OP_TEXT or opcode == OP_BINARY:
            self._compressed = first & 0x40 != 0
        if opcode < OP_CLOSE and self._compressed:
            assert self._inflater is not None
            payload = self._inflater.inflate(payload, fin, self._max_message - self._inflated_size)
            self._inflated_size = 0 if fin else self._inflated_size + len(payload)
            self.inflated_bytes += len(payload)
        if opcode >= OP_CLOSE:
            if opcode == OP_CLOSE:
                return self._close_frame(payload)
            return Frame(opcode, payload, True)
        return self._data_frame(opcode, payload, fin)

    def _compressed_frame(self, first: int, opcode: int) -> bool:
        if opcode == OP_TEXT or opcode == OP_BINARY:
            return first & 0x40 != 0
        return opcode == OP_CONT and self._compressed

    def _is_text(self, opcode: int) -> bool:
        return opcode == OP_TEXT or (opcode == OP_CONT and self._message_opcode == OP_TEXT)

    def _decoder_state(self, opcode: int) -> tuple[bytes, int] | None:
        """Where UTF-8 decoding of the message stands before this frame (a character may straddle frames)."""
        if opcode == OP_CONT and self._decoder is not None:
            state: tuple[bytes, int] = self._decoder.getstate()
            return state
        return None

    # Every frame's header: one function for the reason next_frame is.
    def _check_header(self, first: int, second: int, opcode: int, fin: bool, length: int) -> None:  # noqa: C901, PLR0912
        # RFC 6455 5.2: "MUST be 0 unless an extension is negotiated"; RFC 7692
        # 6: RSV1 on the first frame of a data message marks it compressed.
        if first & 0x70 and (first & 0x30 or self._inflater is None or opcode not in (OP_TEXT, OP_BINARY)):
            raise ProtocolError(1002, "RSV must be 0 if no extensions are negotiated")
        if opcode > OP_BINARY and opcode < OP_CLOSE:
            raise ProtocolError(1002, "Use of reserved non-control frame opcode")
        if opcode > 0xA:
            raise ProtocolError(1002, "Use of reserved control frame opcode")
        if length >> 63:
            raise ProtocolError(1002, "Most significant bit of 64-bit length field set")
        # RFC 6455 5.1: "The server MUST close the connection upon receiving a
        # frame that is not masked."
        if not second & 0x80:
            raise ProtocolError(1002, "Payload mask required")
        if opcode >= OP_CLOSE:
            # RFC 6455 5.5: "All control frames MUST have a payload length of
            # 125 bytes or less and MUST NOT be fragmented."
            if not fin:
                raise ProtocolError(1002, "Illegal control frame fragmentation")
            if length > 125:
                raise ProtocolError(1002, "Control frame payload must be of maximum 125 bytes or less")
            return
        if opcode == OP_CONT:
            if not self._message_opcode:
                raise ProtocolError(
                    1002, "Illegal CONTINUATION opcode; initial message payload frame must be TEXT or BINARY"
                )
        elif self._message_opcode:
            raise ProtocolError(
                1002,
                "Illegal data type opcode after unfinished previous data type frame; opcode MUST be CONTINUATION",
            )
        if length > self._max_frame or self._message_size + length > self._max_message:
            raise ProtocolError(1009, "Received payload exceeds maximum allowable size")
        if self._text_only and opcode == OP_BINARY:
            raise ProtocolError(1003, "BINARY opcodes (0x02) not accepted")

    def _data_frame(self, opcode: int, payload: bytes, fin: bool) -> Frame:
        message_opcode = self._message_opcode or opcode
        try:
            if message_opcode == OP_TEXT:
                data: str | bytes
                if opcode == OP_TEXT and fin:
                    data = payload.decode("utf-8")
                else:
                    if opcode == OP_TEXT:
                        self._decoder = _utf8_decoder()
                    assert self._decoder is not None
                    data = self._decoder.decode(payload, fin)
            else:
                data = payload
        except UnicodeDecodeError:
            raise ProtocolError(1007, "Invalid TEXT data; UTF-8 required") from None
        if fin:
            self._message_opcode = 0
            self._message_size = 0
            self._decoder = None
        else:
            self._message_opcode = message_opcode
            self._message_size += len(payload)
        return Frame(opcode, data, fin)

    @staticmethod
    def _close_frame(payload: bytes) -> Frame:
        if not payload:
            return Frame(OP_CLOSE, "", True, 1005)
        if len(payload) == 1:
            raise ProtocolError(1002, "Close code must be two bytes")
        code = int.from_bytes(payload[:2], "big")
        if not is_valid_peer_close_code(code):
            raise ProtocolError(1002, "Invalid close code")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(1007, "Close reason must be valid UTF-8") from None
        return Frame(OP_CLOSE, reason, True, code)


class _PartialText:
    """Checks the payload of one text frame as UTF-8 while it arrives in pieces.

    Only validity is kept (the frame is decoded again once whole): the cost
    is paid by text frames that span reads, and buys failing on the first
    invalid byte instead of after the whole frame.
    """

    __slots__ = ("_decoder", "_key", "_left", "_offset")

    def __init__(self, key: bytes, length: int, state: tuple[bytes, int] | None) -> None:
        self._key = key
        self._left = length
        self._offset = 0
        self._decoder = _utf8_decoder()
        if state is not None:
            self._decoder.setstate(state)

    def check(self, data: bytes) -> None:
        """Validate the next bytes of the payload (bytes past the frame's end are ignored)."""
        if self._left <= 0 or not data:
            return
        piece = data[: self._left]
        shift = self._offset & 3
        key = self._key[shift:] + self._key[:shift]
        self._offset += len(piece)
        self._left -= len(piece)
        try:
            self._decoder.decode(apply_mask(piece, key), False)
        except UnicodeDecodeError:
            raise ProtocolError(1007, "Invalid TEXT data; UTF-8 required") from None
