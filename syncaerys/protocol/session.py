"""One client's WebSocket protocol state, without sockets, threads or clocks (sans-I/O).

A :class:`Session` turns the bytes a client sends into events and decides the
bytes the server sends back: it owns the connection's state (:class:`State`),
the closing handshake and its codes (RFC 6455 section 7), ping/pong
accounting, and the encoding of outgoing messages (compressed or not). The
caller, :class:`~syncaerys.client.connection.Connection`, does the I/O around it: it
reads the socket, queues what the session returns, and keeps time.

The session is not thread-safe. Its reader (the client's thread) calls
:meth:`Session.receive_data` and :meth:`Session.next_event`; the state
transitions (:meth:`close`, :meth:`close_received`, :meth:`ping`,
:meth:`connection_lost`) may come from other threads too (an application
closing the client, the heartbeat), so the caller serializes those under one
lock of its own. :meth:`encode` and :meth:`shared_key` only read settings,
except that an encoding with a compression context must be called in the
order its frames are queued (see :meth:`encode`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from collections.abc import Hashable
from typing import Final
from typing import NamedTuple

from ..exceptions import ProtocolError
from .deflate import DeflateParams
from .deflate import Deflater
from .deflate import Inflater
from .deflate import compress_once
from .frames import OP_CLOSE
from .frames import OP_PING
from .frames import OP_PONG
from .frames import SENDMSG_FROM
from .frames import Encoded
from .frames import encode_close
from .frames import encode_frame
from .frames import encode_frames
from .frames import encode_message
from .mask import Buffer
from .parser import Frame
from .parser import FrameParser

__all__ = [
    "State",
    "Session",
    "PingReceived",
    "PongReceived",
    "CloseReceived",
    "ProtocolViolation",
    "Event",
    "ABNORMAL_REASON",
]

#: The reason recorded when TCP ends without a closing handshake (code 1006).
ABNORMAL_REASON = "Client closed underlying TCP connection"


class State(enum.Enum):
    """Where a connection is in its life (RFC 6455 section 4 to 7)."""

    #: Messages flow both ways.
    OPEN = "open"
    #: This side sent a close frame and waits for the peer's; no more data is sent.
    CLOSING_LOCAL = "closing (close frame sent)"
    #: The peer sent a close frame; this side answers with its own and closes TCP.
    CLOSING_REMOTE = "closing (close frame received)"
    #: TCP is closed or being closed; nothing more is read or written.
    CLOSED = "closed"


class PingReceived(NamedTuple):
    """The client pinged: queue ``reply`` (its pong) ahead of queued data (RFC 6455 5.5.2)."""

    reply: bytes


class PongReceived(NamedTuple):
    """The client answered a ping; ``latency`` in seconds when it answered the latest one."""

    latency: float | None


class CloseReceived(NamedTuple):
    """The client sent a close frame; reading is over.

    Call :meth:`Session.close_received` (under the transitions lock): it returns the close
    frame to answer with, or ``None`` when this side had closed first (the handshake is
    then complete). Queue the answer after the queued data, wait until it is written,
    then close TCP.
    """

    code: int
    reason: str


class ProtocolViolation(NamedTuple):
    """The client broke the protocol; reading is over.

    Fail the connection (RFC 6455 7.1.7): call :meth:`Session.close` with the error's
    ``code`` and ``reason``, queue the frame it returns, wait until it is written, close TCP.
    """

    error: ProtocolError


#: What :meth:`Session.next_event` returns besides data frames (``Frame``, opcode below 8).
Event = Frame | PingReceived | PongReceived | CloseReceived | ProtocolViolation

# How a message of some size is encoded for this client.
_PLAIN: Final = 0  # uncompressed: the same bytes for every client with the same frame size
_SHARED: Final = 1  # compressed without context: the same bytes for every client with the same parameters
_ORDERED: Final = 2  # compressed with this client's context: encoded for it alone, in queue order


class Session:
    """The protocol state of one client (see the module docstring for the threading rules).

    Not thread-safe: each method says who may call it. No method blocks.

    :param max_frame_size: largest frame payload accepted (1009 above); ``None`` for no limit.
    :param max_message_size: largest message accepted (1009 above); ``None`` for no limit.
    :param text_only: close binary messages with 1003.
    :param deflate: the negotiated permessage-deflate parameters, or ``None``.
    :param auto_frame_size: outgoing messages larger than this are fragmented.
    :param compression_threshold: outgoing messages smaller than this are not compressed.
    :param compression_memory_level: zlib's ``memLevel`` for outgoing messages.
    :param clock: a monotonic clock in seconds, for ping latencies (``time.monotonic``).
    """

    __slots__ = (
        "_clock",
        "_deflater",
        "_frame_size",
        "_last_ping_at",
        "_memory_level",
        "_parser",
        "_threshold",
        "bytes_read",
        "close_code",
        "close_reason",
        "frames_read",
        "latency",
        "messages_read",
        "parser",
        "pings_sent",
        "pongs_received",
        "reading_done",
        "state",
    )

    def __init__(
        self,
        *,
        max_frame_size: int | None,
        max_message_size: int | None,
        text_only: bool,
        deflate: DeflateParams | None,
        auto_frame_size: int | None,
        compression_threshold: int,
        compression_memory_level: int,
        clock: Callable[[], float],
    ) -> None:
        inflater = Inflater(deflate) if deflate is not None else None
        self._parser = FrameParser(max_frame_size, max_message_size, text_only, inflater)
        #: The reader's parser, for its read hints (``missing``, ``receiving``) without
        #: this class's properties in between (a per-read cost); bytes go in through
        #: :meth:`receive_data` or :meth:`received_into`, frames come out through :meth:`next_event`.
        self.parser = self._parser
        self._deflater = Deflater(deflate, compression_memory_level) if deflate is not None else None
        self._frame_size = auto_frame_size
        self._threshold = compression_threshold
        self._memory_level = compression_memory_level
        self._clock = clock
        self._last_ping_at = 0.0
        #: See :class:`State`. Changed only by the transition methods.
        self.state = State.OPEN
        #: The code and reason of the closing handshake (``None`` while open).
        self.close_code: int | None = None
        self.close_reason: str | None = None
        #: Whether nothing more is to be read (a close frame or a protocol error came).
        self.reading_done = False
        self.bytes_read = 0
        self.frames_read = 0
        #: Complete messages received (counted at their last frame).
        self.messages_read = 0
        self.pings_sent = 0
        self.pongs_received = 0
        #: The round trip of the latest answered ping, in seconds.
        self.latency: float | None = None

    @property
    def is_open(self) -> bool:
        """Whether the state is :attr:`State.OPEN`. Any thread (one attribute read); never blocks."""
        return self.state is State.OPEN

    @property
    def compression(self) -> bool:
        """Whether permessage-deflate was negotiated. Any thread (fixed at creation); never blocks."""
        return self._deflater is not None

    # -- incoming

    @property
    def missing(self) -> int:
        """Bytes the frame being received still needs (0 when one may be ready): a read-size hint.

        The reader's; never blocks.
        """
        return self._parser.missing

    @property
    def receiving(self) -> bool:
        """Whether a frame or a message has started arriving and is not whole yet. The reader's; never blocks."""
        return self._parser.receiving

    @property
    def inflated_bytes(self) -> int:
        """Bytes produced by decompression so far (for budgets on what the client makes us inflate).

        The reader's; never blocks.
        """
        return self._parser.inflated_bytes

    def receive_data(self, data: bytes) -> None:
        """Take bytes read from the client; then call :meth:`next_event` until it returns ``None``.

        The reader only; never blocks.
        """
        self.bytes_read += len(data)
        self._parser.feed(data)

    def take_alone(self, data: Buffer) -> Frame | None:
        """A read's bytes as one whole data message when they are exactly that (:meth:`FrameParser.take_alone`).

        ``None``: give them to :meth:`receive_data` instead. The reader only; never blocks.
        """
        if self.reading_done:
            return None
        frame = self._parser.take_alone(data)
        if frame is not None:
            self.bytes_read += len(data)
            self.frames_read += 1
            self.messages_read += 1
        return frame

    def receive_buffer(self) -> memoryview | None:
        """Where to read the rest of a large frame straight into (:meth:`FrameParser.receive_buffer`), or ``None``.

        Then call :meth:`received_into`. The reader only; never blocks.
        """
        return self._parser.receive_buffer()

    def received_into(self, count: int) -> None:
        """Take ``count`` bytes read into the last :meth:`receive_buffer`. The reader only; never blocks."""
        self._parser.received_into(count)
        self.bytes_read += count

    def next_event(self) -> Event | None:
        """The next frame or event; ``None`` when more bytes are needed (or reading is done).

        A data ``Frame`` (opcode below 8) goes to the application. For the other
        events, each class says what the caller does next. The reader only; never blocks.
        """
        if self.reading_done:
            return None
        try:
            frame = self._parser.next_frame()
        except ProtocolError as error:
            self.reading_done = True
            return ProtocolViolation(error)
        if frame is None:
            return None
        self.frames_read += 1
        opcode = frame.opcode
        if opcode < OP_CLOSE:
            if frame.fin:
                self.messages_read += 1
            return frame
        if opcode == OP_PING:
            # RFC 6455 5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a
            # Pong frame in response", even between the fragments of a message.
            return PingReceived(encode_frame(OP_PONG, frame.data))  # type: ignore[arg-type]
        if opcode == OP_PONG:
            return PongReceived(self._pong(frame.data))  # type: ignore[arg-type]
        # RFC 6455 5.5.1: after a close frame, nothing more is read.
        self.reading_done = True
        return CloseReceived(frame.code, frame.data)  # type: ignore[arg-type]

    def _pong(self, payload: bytes) -> float | None:
        try:
            number = int(payload)
        except ValueError:
            return None  # an unsolicited pong with a payload of the peer's own
        latency = None
        if number == self.pings_sent and number > self.pongs_received:
            latency = self.latency = self._clock() - self._last_ping_at
        if self.pongs_received < number <= self.pings_sent:
            self.pongs_received = number
        return latency

    # -- transitions (serialized by the caller)

    def close(self, code: int, reason: str) -> bytes | None:
        """Start the closing handshake from this side; the close frame to queue, or ``None``.

        ``None`` when the connection is already closing or closed (nothing to
        do). Otherwise queue the frame after the data already queued, and close
        TCP when the peer's close frame arrives or a deadline passes. A
        transition: any thread, serialized by the caller's lock; never blocks.
        """
        return self._start_closing(State.CLOSING_LOCAL, code, reason)

    def close_received(self, code: int, reason: str) -> bytes | None:
        """Apply a :class:`CloseReceived`; the close frame to answer with, or ``None``.

        RFC 6455 5.5.1: "If an endpoint receives a Close frame and did not
        previously send a Close frame, the endpoint MUST send a Close frame in
        response", echoing the code. ``None`` when this side had closed first.
        A transition: serialized by the caller's lock; never blocks.
        """
        return self._start_closing(State.CLOSING_REMOTE, code, reason)

    def _start_closing(self, state: State, code: int, reason: str) -> bytes | None:
        # The first of the two ways out of OPEN wins; the close frame is this side's.
        if self.state is not State.OPEN:
            return None
        self.state = state
        self.close_code = code
        self.close_reason = reason
        return encode_close(code, reason.encode())

    def connection_lost(self) -> None:
        """TCP ended (or is being closed): the state becomes :attr:`State.CLOSED`.

        Without a closing handshake first, the close code is 1006 (RFC 6455 7.1.5).
        A transition: serialized by the caller's lock; never blocks.
        """
        if self.state is State.OPEN:
            self.close_code = 1006
            self.close_reason = ABNORMAL_REASON
        self.state = State.CLOSED
        self.reading_done = True

    def ping(self) -> bytes | None:
        """A heartbeat ping to queue (ahead of queued data), or ``None`` unless open.

        Its payload is its number, so that a pong tells which ping it answers.
        A transition: any thread (the heartbeat's), serialized by the caller's lock; never blocks.
        """
        if self.state is not State.OPEN:
            return None
        self.pings_sent += 1
        self._last_ping_at = self._clock()
        return encode_frame(OP_PING, str(self.pings_sent).encode())

    @property
    def unanswered_pings(self) -> int:
        """Pings sent that no pong has answered yet. Any thread (two counters read as they are); never blocks."""
        return self.pings_sent - self.pongs_received

    # -- outgoing messages

    def _plan(self, size: int) -> int:
        # The one place that decides whether and how a message is compressed.
        deflater = self._deflater
        if deflater is None or size < self._threshold:
            return _PLAIN
        if deflater.params.server_no_context_takeover:
            return _SHARED
        return _ORDERED

    def shared_key(self, size: int) -> Hashable | None:
        """A key for a message of ``size`` bytes: sessions with equal keys encode it to the same bytes.

        A fan-out encodes once per key. ``None``: this session's compression
        context makes its bytes its own. Any thread (it only reads settings); never blocks.
        """
        if self._deflater is None:
            return self._frame_size  # _plan's answer without its call (once per client of a fan-out)
        plan = self._plan(size)
        if plan == _PLAIN:
            return self._frame_size
        if plan == _SHARED:
            params = self._deflater.params
            return (self._frame_size, params.server_window_bits, self._memory_level)
        return None

    def encode(self, opcode: int, payload: bytes) -> Encoded:
        """The frames of a message for this client (:data:`~syncaerys.protocol.frames.Encoded`).

        One frame's ``bytes`` (a small message in one frame), a list of frames
        (:data:`~syncaerys.protocol.frames.OutFrame`), or, when the message is
        compressed with this client's context, a
        function that builds the list: call it in the order the frames are
        queued (the peer's decompressor sees messages in that order), once.
        Any thread (it only reads settings); the functions it returns must be
        called one at a time (the send queue calls them under its lock). Never blocks.
        """
        size = len(payload)
        if size < 126 and self._deflater is None and (self._frame_size is None or size <= self._frame_size):
            # The commonest message, one small frame: encode_message's first case without its call.
            return bytes((opcode | 0x80, size)) + payload
        if self._deflater is None and size < SENDMSG_FROM:
            # The common small message: frames of joined bytes, the fewest calls (a per-message cost).
            return encode_message(opcode, payload, self._frame_size)  # type: ignore[return-value]
        plan = self._plan(size)
        if plan == _PLAIN:
            return encode_frames(opcode, payload, self._frame_size)
        deflater = self._deflater
        assert deflater is not None
        if plan == _SHARED:
            compressed = compress_once(payload, deflater.params.server_window_bits, self._memory_level)
            return encode_frames(opcode, compressed, self._frame_size, True)
        return lambda: encode_frames(opcode, deflater.compress(payload), self._frame_size, True)
