"""The incremental frame parser for client-to-server frames (sans-I/O).

Feed it bytes as they arrive with :meth:`FrameParser.feed`, then call
:meth:`FrameParser.next_frame` until it returns ``None`` (it needs more bytes).
Every rule of RFC 6455 that a server must enforce is checked here, and limits
are decided from the frame header, before the payload is buffered. A violation
raises :class:`~syncaerys.exceptions.ProtocolError` carrying the close code and
reason to answer with; the parser is unusable afterwards.

Text payloads are validated as UTF-8 incrementally and handed out as ``str``
chunks that never split a character; binary payloads as ``bytes``.

Each frame's header and payload go through
:func:`~syncaerys.protocol.framing.parse_frame` (C when the extension is
built). A frame larger than the caller's read buffer can be read straight
into a buffer of its own size: :meth:`FrameParser.receive_buffer`.
"""

from __future__ import annotations

import codecs
from typing import Final
from typing import NamedTuple
from typing import cast

from ..exceptions import ProtocolError
from .deflate import Inflater
from .frames import OP_BINARY
from .frames import OP_CLOSE
from .frames import OP_CONT
from .frames import OP_TEXT
from .frames import is_valid_peer_close_code
from .framing import RSV1_ALLOWED
from .framing import TEXT_ONLY
from .framing import parse_frame
from .mask import Buffer
from .mask import apply_mask
from .mask import unmask_in_place

__all__ = ["DIRECT_MAX", "Frame", "FrameParser"]

_utf8_decoder = codecs.getincrementaldecoder("utf-8")

#: The largest payload :meth:`FrameParser.receive_buffer` gives a buffer of its own:
#: that buffer is allocated whole when the frame begins, so a larger frame (which
#: only a configuration without size limits lets in) is collected as it arrives.
DIRECT_MAX: Final = 16 << 20


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


_new_frame: Final = tuple.__new__


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
        "_base_flags",
        "_buf",
        "_compressed",
        "_decoder",
        "_error",
        "_flags",
        "_inflated_size",
        "_inflater",
        "_large",
        "_limit",
        "_max_frame",
        "_max_message",
        "_message_opcode",
        "_message_size",
        "_more",
        "_more_len",
        "_partial",
        "_pos",
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
        # The frame being read straight into a buffer of its size (receive_buffer).
        self._large: _LargeFrame | None = None
        # parse_frame's flags and limit (syncaerys.protocol.framing), kept up to
        # date with the message in progress rather than worked out for each frame.
        self._base_flags = (RSV1_ALLOWED if inflater is not None else 0) | (TEXT_ONLY if text_only else 0)
        self._flags = self._base_flags
        self._limit = min(self._max_frame, self._max_message)
        self._error: ProtocolError | None = None

    @property
    def in_message(self) -> bool:
        """Whether a fragmented data message has started and not yet finished."""
        return self._message_opcode != 0

    @property
    def receiving(self) -> bool:
        """Whether a frame or a fragmented message has started and not yet finished."""
        return self._message_opcode != 0 or self._pos < len(self._buf) or self._more_len > 0 or self._large is not None

    @property
    def missing(self) -> int:
        """How many more bytes the frame (or frame header) being waited for needs; 0 when one may be ready."""
        if self._large is not None:
            return self._large.missing
        missing = self._want - (len(self._buf) - self._pos) - self._more_len
        return missing if missing > 0 else 0

    def feed(self, data: bytes) -> None:
        """Add bytes read from the network; then call :meth:`next_frame`."""
        if self._partial is not None and self._error is None:
            self._check_partial(data)
        if self._large is not None:
            taken = self._large.take(data)
            if taken == len(data):
                return
            data = data[taken:]
        if self._pos >= len(self._buf) and not self._more:
            self._buf = data
            self._pos = 0
        else:
            self._more.append(data)
            self._more_len += len(data)

    def take_alone(self, data: Buffer) -> Frame | None:
        """The message ``data`` holds exactly, when it is one whole uncompressed text or binary frame; else ``None``.

        For a read that came while nothing was buffered: the commonest case,
        one small message per read, parsed where it was read instead of being
        copied and fed. ``None`` (anything else, including a frame that breaks
        a rule, or bytes already buffered) changes nothing: :meth:`feed` the
        bytes then, which parses them again. Not with permessage-deflate
        (always ``None``: its frames would be parsed twice). ``data`` is not
        referenced afterwards; never blocks.
        """
        if self._inflater is not None or self.receiving:
            return None
        parsed = parse_frame(data, 0, self._flags, self._limit)
        if type(parsed) is not tuple or len(parsed) != 3:
            return None
        first, payload, end = parsed
        if end != len(data):
            return None
        if type(payload) is str:
            return _new_frame(Frame, (OP_TEXT, payload, True, 0))
        if first == 0x80 | OP_BINARY:
            return _new_frame(Frame, (OP_BINARY, payload, True, 0))
        return None

    def receive_buffer(self) -> memoryview | None:
        """A writable view of the rest of the frame being received, to read into; then call :meth:`received_into`.

        ``None`` unless a frame's header (mask key included) is whole and
        its payload is not (and not larger than :data:`DIRECT_MAX`): read
        and :meth:`feed` as usual then. The first
        call for a frame moves it into one buffer of its payload's size,
        which the rest of it is read into directly (no pieces to join); the
        view never reaches past the frame's end. Never blocks.
        """
        if self._error is not None:
            return None
        large = self._large
        if large is None:
            large = self._start_large()
            if large is None:
                return None
        return large.rest() if large.missing else None

    def received_into(self, count: int) -> None:
        """Take ``count`` bytes just written at the start of the last :meth:`receive_buffer` view."""
        large = self._large
        if large is None or not 0 <= count <= large.missing:
            raise ValueError("received_into() without a receive_buffer() that many bytes long")
        if self._partial is not None and self._error is None:
            self._check_partial(large.rest()[:count])
        large.filled += count

    def _check_partial(self, data: Buffer) -> None:
        assert self._partial is not None
        try:
            self._partial.check(data)
        except ProtocolError as error:
            self._error = error

    def _start_large(self) -> _LargeFrame | None:
        """Move the frame that has begun into a buffer of its payload's size, once its header is whole."""
        if self._more:
            self._buf = self._buf[self._pos :] + b"".join(self._more)
            self._pos = 0
            self._more = []
            self._more_len = 0
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 2:
            return None
        header = _header_size(buf[pos + 1])
        if avail < header or self._want <= avail or self._want - header > DIRECT_MAX:
            # Its header is not whole, it is whole already (next_frame has not looked
            # yet), or it is too large to allocate at once.
            return None
        start = pos + header
        large = _LargeFrame(buf[pos], buf[start - 4 : start], self._want - header)
        large.take(memoryview(buf)[start:])
        self._large = large
        self._buf = b""
        self._pos = 0
        self._want = 2
        return large

    def next_frame(self) -> Frame | None:
        """Return the next whole frame, or ``None`` when more bytes are needed.

        Raises :class:`ProtocolError` on any violation; the caller must then
        close the connection with its ``code`` and stop parsing.
        """
        if self._error is not None:
            raise self._error
        if self._large is not None:
            return self._large_frame()
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
        parsed = parse_frame(buf, pos, self._flags, self._limit)
        if isinstance(parsed, int):
            self._want = parsed
            if parsed > avail >= 6 and self._partial is None:
                self._start_partial(buf, pos, avail)
            return None
        if len(parsed) == 2:
            raise ProtocolError(*parsed)
        first, payload, end = parsed
        self._partial = None
        self._want = 2
        if end == len(buf):
            # All parsed: let go of the buffer now (it may hold a large frame)
            # rather than keep it until the next read, however long that takes.
            self._buf = b""
            self._pos = 0
        else:
            self._pos = end
        # tuple.__new__ makes the Frame at half the cost of calling it (its __new__ is Python).
        if type(payload) is str:
            # A whole uncompressed text message in one frame, decoded already.
            return _new_frame(Frame, (OP_TEXT, payload, True, 0))
        if first == 0x80 | OP_BINARY:
            return _new_frame(Frame, (OP_BINARY, payload, True, 0))
        return self._frame(first, cast("bytes", payload))

    def _start_partial(self, buf: bytes, pos: int, avail: int) -> None:
        """Start checking a text frame whose header is whole as UTF-8 as its payload arrives."""
        first = buf[pos]
        opcode = first & 0x0F
        if self._compressed_frame(first, opcode) or not self._is_text(opcode):
            return
        start = pos + _header_size(buf[pos + 1])
        if start > pos + avail:
            return
        self._partial = _PartialText(buf[start - 4 : start], self._want - (start - pos), self._decoder_state(opcode))
        self._partial.check(buf[start : pos + avail])

    def _large_frame(self) -> Frame | None:
        """The frame read into its own buffer, once it is whole."""
        large = self._large
        assert large is not None
        if large.missing:
            return None
        self._large = None
        self._partial = None
        first = large.first
        opcode = first & 0x0F
        payload: bytes | bytearray
        if self._is_text(opcode) and not self._compressed_frame(first, opcode):
            # Unmasked where it is: decoding makes the one copy.
            unmask_in_place(large.payload, large.key)
            payload = large.payload
        else:
            # Unmasking into a new bytes object is the one copy.
            payload = apply_mask(large.payload, large.key)
        if type(payload) is bytes and first == 0x80 | OP_BINARY:
            return Frame(OP_BINARY, payload, True)
        return self._frame(first, payload)

    def _frame(self, first: int, payload: bytes | bytearray) -> Frame:
        """Every frame but the common ones: control frames, fragments, compressed messages."""
        opcode = first & 0x0F
        if opcode == OP_TEXT or opcode == OP_BINARY:
            self._compressed = first & 0x40 != 0
        if opcode < OP_CLOSE and self._compressed:
            assert self._inflater is not None
            payload = self._inflater.inflate(bytes(payload), first & 0x80 != 0, self._max_message - self._inflated_size)
            self._inflated_size = 0 if first & 0x80 else self._inflated_size + len(payload)
            self.inflated_bytes += len(payload)
        if opcode >= OP_CLOSE:
            if opcode == OP_CLOSE:
                return self._close_frame(bytes(payload))
            return Frame(opcode, bytes(payload), True)
        return self._data_frame(opcode, payload, first & 0x80 != 0)

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

    def _data_frame(self, opcode: int, payload: bytes | bytearray, fin: bool) -> Frame:
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
                data = bytes(payload)  # (a bytes payload is not copied)
        except UnicodeDecodeError:
            raise ProtocolError(1007, "Invalid TEXT data; UTF-8 required") from None
        if fin:
            self._message_opcode = 0
            self._message_size = 0
            self._decoder = None
            self._flags = self._base_flags
            self._limit = min(self._max_frame, self._max_message)
        else:
            self._message_opcode = message_opcode
            self._message_size += len(payload)
            self._flags = self._base_flags | message_opcode
            self._limit = min(self._max_frame, self._max_message - self._message_size)
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

    def check(self, data: Buffer) -> None:
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


def _header_size(second: int) -> int:
    """A client frame header's size, mask key included, from its second byte."""
    length = second & 0x7F
    return 6 if length < 126 else 8 if length == 126 else 14


class _LargeFrame:
    """A frame read straight into one buffer of its payload's size (still masked)."""

    __slots__ = ("filled", "first", "key", "payload")

    def __init__(self, first: int, key: bytes, length: int) -> None:
        self.first = first
        self.key = key
        self.payload = bytearray(length)
        self.filled = 0

    @property
    def missing(self) -> int:
        return len(self.payload) - self.filled

    def rest(self) -> memoryview:
        return memoryview(self.payload)[self.filled :]

    def take(self, data: Buffer) -> int:
        """Copy what of ``data`` belongs to the payload; return how many bytes that was."""
        count = min(len(data), self.missing)
        self.payload[self.filled : self.filled + count] = data[:count]
        self.filled += count
        return count
