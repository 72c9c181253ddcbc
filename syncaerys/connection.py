"""Connection: one client, run by the thread that handled its upgrade.

That thread reads the socket, parses frames, answers pings and calls
``on_open``, ``on_data`` (one message at a time, in order) and, exactly once,
``on_close``. ``Message.result()`` keeps reading in the same thread. Writes go
through the client's :class:`~syncaerys.sendqueue.SendQueue`; heartbeats and
close deadlines run on the shared timer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Hashable
from typing import TYPE_CHECKING
from typing import Any

from .exceptions import ClientException
from .exceptions import ProtocolError
from .message import Message
from .protocol.deflate import DeflateParams
from .protocol.deflate import Deflater
from .protocol.deflate import Inflater
from .protocol.deflate import compress_once
from .protocol.frames import OP_CLOSE
from .protocol.frames import OP_CONT
from .protocol.frames import OP_PING
from .protocol.frames import OP_PONG
from .protocol.frames import encode_close
from .protocol.frames import encode_frame
from .protocol.frames import encode_message
from .protocol.parser import Frame
from .protocol.parser import FrameParser
from .protocol.ratelimit import TokenBucket
from .sendqueue import SendQueue
from .sendqueue import Waiter
from .sendqueue import shared_flusher
from .stats import Totals
from .timer import TimerHandle
from .timer import shared_timer
from .transport import Transport

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = ["Connection", "OPEN", "CLOSING", "CLOSED"]

logger = logging.getLogger("syncaerys")

#: The client is open: it is in ``get_clients()`` and may be sent to.
OPEN = 0
#: A close frame was sent or received; sends fail, data frames are dropped.
CLOSING = 1
#: The socket is shut down; ``on_close`` runs or has run.
CLOSED = 2

#: How long a client's socket may stay full while more than ``max_send_queue``
#: bytes wait for it (see ``Connection._check_queue``).
SEND_QUEUE_GRACE = 1.0

#: The most one read asks for (a large frame is read in pieces of this size).
READ_SIZE = 1 << 16
#: The size of each connection's reusable read buffer, used unless a frame
#: larger than it is known to be on its way (see ``Connection._receive``).
BUFFER_SIZE = 1 << 12


class Connection:
    """The state of one client and the loop its thread runs."""

    def __init__(
        self,
        gateway: Gateway,
        transport: Transport,
        client_id: int,
        remote_address: str,
        subprotocol: str | None,
        path: str,
        deflate: DeflateParams | None = None,
    ) -> None:
        options = gateway.options
        self.id = client_id
        self.transport = transport
        self.gateway = gateway
        self.remote_address = remote_address
        self.subprotocol = subprotocol
        self.path = path
        self._options = options
        self._parser = FrameParser(
            options.max_frame_size,
            options.max_message_size,
            options.text_only,
            Inflater(deflate) if deflate is not None else None,
        )
        self._deflater = Deflater(deflate, options.compression_memory_level) if deflate is not None else None
        self._frame_size = options.auto_frame_size
        self._compression_threshold = options.compression_threshold
        self.queue = SendQueue(transport, client_id, shared_flusher())
        #: OPEN, CLOSING or CLOSED; changed under ``queue.lock``.
        self.state = OPEN
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.connected_at = time.time()
        self.closed_at = 0.0
        self.bytes_read = 0
        self.frames_read = 0
        self.messages_read = 0
        self.last_read_at = 0.0
        self.last_data_read_at = 0.0
        self.pings_sent = 0
        self.pongs_received = 0
        self.latency: float | None = None
        self._last_ping_at = 0.0
        # For the heartbeat: when the peer was last heard from, and whether this
        # thread is blocked waiting for it (only then do unanswered pings count).
        self._last_read_mono = time.monotonic()
        self._waiting = False
        self._waiting_since = 0.0
        self._done_reading = False
        # Set when the client starts closing, to end a rate-limit pause early.
        self._wake = threading.Event()
        now = time.monotonic()
        self._byte_budget = (
            TokenBucket(options.max_bytes_per_minute, options.max_bytes_per_minute / 60, now)
            if options.max_bytes_per_minute is not None
            else None
        )
        self._frame_budget = (
            TokenBucket(options.max_frames_per_second, options.max_frames_per_second, now)
            if options.max_frames_per_second is not None
            else None
        )
        # The handler method this client's thread is in (None while it reads frames).
        self._callback: str | None = None
        self._callback_since = 0.0
        self._callback_calls = 0
        self._warned_call = 0
        self._inflates = deflate is not None
        self._inflated_charged = 0
        self._heartbeat_handle: TimerHandle | None = None
        self._close_handle: TimerHandle | None = None
        self._buffer = memoryview(bytearray(BUFFER_SIZE))
        self._debug = logger.isEnabledFor(logging.DEBUG)

    @property
    def is_open(self) -> bool:
        return self.state == OPEN

    # -- the client's thread

    def run(self, handshake_data: Any, opened: Callable[[], None] | None = None) -> None:
        """Serve the client until the connection ends; calls ``on_close`` once.

        ``opened`` is called once ``on_open`` has returned (the gateway's
        handshake accounting).
        """
        callbacks = self.gateway.callbacks
        client_id = self.id
        if self._options.heartbeat_period is not None:
            self._heartbeat_handle = shared_timer().call_later(self._options.heartbeat_period, self._heartbeat)
        logger.info("client %d opened from %s on %s", client_id, self.remote_address, self.path)
        try:
            try:
                self._call_handler(callbacks.on_open, client_id, handshake_data)
            finally:
                if opened is not None:
                    opened()
            while self._handle_next():
                pass
        except Exception:
            logger.exception("client %d: unexpected error in its connection loop", client_id)
            self.close(1011, "Internal server error, aborting")
        finally:
            self._finish()

    def _handle_next(self) -> bool:
        """Wait for the next message and hand it to ``on_data``; False when the connection is over.

        A method of its own so that nothing of a message is still referenced
        while the thread waits for the next one.
        """
        frame = self.next_data_frame(None)
        if frame is None:
            return False
        if frame.opcode == OP_CONT or self.state != OPEN or self.gateway.stopping:
            # Data of a message that is being dropped (closing, stopping).
            return True
        message = Message(self, frame)
        self._call_handler(self.gateway.callbacks.on_data, self.id, message)
        message._drain()
        return True

    def _call_handler(self, method: Any, *args: Any) -> None:
        self._callback = getattr(method, "__name__", "handler")
        self._callback_since = time.monotonic()
        self._callback_calls += 1
        try:
            method(*args)
        except ClientException:
            if self.state == OPEN:
                logger.exception("client %d: handler raised ClientException while open", self.id)
                self.close(1011, "Internal server error, aborting")
        except Exception:
            logger.exception("client %d: exception in %s", self.id, getattr(method, "__name__", "handler"))
            self.close(1011, "Internal server error, aborting")
        finally:
            self._callback = None

    def traffic(self) -> Totals:
        """This client's traffic so far (for the gateway's statistics). Any thread."""
        queue = self.queue
        return Totals(
            self.bytes_read,
            queue.bytes_sent,
            self.messages_read,
            queue.messages_sent,
            self.frames_read,
            queue.frames_sent,
        )

    def busy_in(self) -> tuple[str, float] | None:
        """The callback this client's thread is running and for how long, or ``None``. Any thread."""
        name = self._callback
        if name is None:
            return None
        return name, time.monotonic() - self._callback_since

    def next_data_frame(self, deadline: float | None) -> Frame | None:
        """Return the next data frame, handling control frames on the way.

        Returns ``None`` when the connection is over (closing handshake done,
        protocol error, TCP drop). Raises :class:`TimeoutError` when
        ``deadline`` (a ``time.monotonic()`` value) passes first.
        """
        parser = self._parser
        frame_budget = self._frame_budget
        while not self._done_reading:
            if frame_budget is not None and frame_budget.level < 0:
                # Before taking the next frame: a timeout raised here loses nothing.
                self._throttle(deadline)
            try:
                frame = parser.next_frame()
            except ProtocolError as error:
                self._fail(error)
                return None
            if frame is None:
                self._receive(deadline)
                continue
            self.frames_read += 1
            if frame_budget is not None:
                # Billed per frame, not per read: one read may hold thousands.
                frame_budget.spend(1, time.monotonic())
            if self._inflates and self._byte_budget is not None:
                # Charged on what the client makes us inflate, not on its compressed bytes.
                inflated = parser.inflated_bytes
                if inflated > self._inflated_charged:
                    self._byte_budget.spend(inflated - self._inflated_charged, time.monotonic())
                    self._inflated_charged = inflated
            opcode = frame.opcode
            if self._debug:
                logger.debug("client %d < %s fin=%s %d", self.id, opcode, frame.fin, len(frame.data))
            if opcode < OP_CLOSE:
                self.last_data_read_at = self.last_read_at
                if frame.fin:
                    self.messages_read += 1
                return frame
            if opcode == OP_PING:
                # RFC 6455 5.5.2: "Upon receipt of a Ping frame, an endpoint MUST
                # send a Pong frame in response", even between fragments.
                queued = self.queue.put_control(encode_frame(OP_PONG, frame.data))  # type: ignore[arg-type]
                # Pongs the peer does not read are its own doing: no grace for them.
                self._check_queue(queued, grace=0.0)
            elif opcode == OP_PONG:
                self._pong(frame.data)  # type: ignore[arg-type]
            else:
                self._peer_closed(frame)
        return None

    def _receive(self, deadline: float | None) -> None:
        if self._byte_budget is not None:
            self._throttle(deadline)
        transport = self.transport
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not transport.wait_readable(remaining):
                raise TimeoutError("no data from the client before the timeout")
        # Reads go into this connection's small reusable buffer and only what
        # came is copied out, in an object of its exact size. The alternative,
        # recv(READ_SIZE), allocates 64 KiB that the thread holds while it
        # waits and that is then shrunk in place: with a thread per client,
        # glibc's heap fills with 64 KiB holes pinned by the small survivors,
        # and RSS grew by over 1 GiB in a soak of 1,000 clients. Only the rest
        # of a frame known to be larger than the buffer is read with recv(), in
        # pieces no larger than what the frame still needs.
        missing = self._parser.missing
        buffer = self._buffer
        self._waiting_since = time.monotonic()
        self._waiting = True
        try:
            if missing > BUFFER_SIZE:
                data = transport.recv(min(missing, READ_SIZE))
            else:
                data = bytes(buffer[: transport.recv_into(buffer)])
        except OSError:
            data = b""
        finally:
            self._waiting = False
        if not data:
            self._eof()
            return
        self._last_read_mono = time.monotonic()
        self.last_read_at = time.time()
        self.bytes_read += len(data)
        if self._byte_budget is not None:
            self._byte_budget.spend(len(data), self._last_read_mono)
        self._parser.feed(data)

    def received(self, data: bytes) -> None:
        """Take bytes the client sent that were read by someone else (the host server, before the 101).

        Call before :meth:`run`; they are parsed before anything read from the socket.
        """
        self.bytes_read += len(data)
        self._last_read_mono = time.monotonic()
        self.last_read_at = time.time()
        if self._byte_budget is not None:
            self._byte_budget.spend(len(data), self._last_read_mono)
        self._parser.feed(data)

    def _throttle(self, deadline: float | None) -> None:
        """Stop reading (TCP backpressure) while an inbound budget is spent.

        Raises :class:`TimeoutError` when ``deadline`` (a reader's timeout)
        comes before the budget refills.
        """
        while self.state == OPEN:
            now = time.monotonic()
            delay = 0.0
            if self._frame_budget is not None:
                delay = self._frame_budget.delay(now)
            if self._byte_budget is not None:
                delay = max(delay, self._byte_budget.delay(now))
            if delay <= 0:
                return
            if deadline is not None and now + delay > deadline:
                self._wake.wait(max(0.0, deadline - now))
                if time.monotonic() >= deadline:
                    raise TimeoutError("no data from the client before the timeout (its reads are rate-limited)")
                continue
            if self._debug:
                logger.debug("client %d: rate limit, pausing reads for %.3fs", self.id, delay)
            self._wake.wait(delay)

    def _pong(self, payload: bytes) -> None:
        try:
            number = int(payload)
        except ValueError:
            return  # an unsolicited pong with a payload of the peer's own
        if number == self.pings_sent and number > self.pongs_received:
            self.latency = time.monotonic() - self._last_ping_at
            self.gateway.stats.latency(self.latency)
        if self.pongs_received < number <= self.pings_sent:
            self.pongs_received = number

    def _peer_closed(self, frame: Frame) -> None:
        echo = False
        with self.queue.lock:
            if self.state == OPEN:
                # RFC 6455 5.5.1: "If an endpoint receives a Close frame and did
                # not previously send a Close frame, the endpoint MUST send a
                # Close frame in response."
                self._set_closing_locked(frame.code, frame.data)  # type: ignore[arg-type]
                self.queue.put_close(encode_close(frame.code, frame.data.encode()))  # type: ignore[union-attr]
                echo = True
        if echo:
            self.queue.flush()
            self.queue.wait_drained(self._options.close_period)
        self._done_reading = True

    def _fail(self, error: ProtocolError) -> None:
        """Fail the connection (RFC 6455 7.1.7): send our close, then drop TCP."""
        logger.info("client %d: protocol error: %s", self.id, error)
        if self.close(error.code, error.reason):
            self.queue.wait_drained(self._options.close_period)
        self._done_reading = True

    def _eof(self) -> None:
        with self.queue.lock:
            if self.state == OPEN:
                self._set_closing_locked(1006, "Client closed underlying TCP connection")
        self._done_reading = True

    def _finish(self) -> None:
        with self.queue.lock:
            if self.state == OPEN:
                self._set_closing_locked(1006, "Client closed underlying TCP connection")
            self.state = CLOSED
        for handle in (self._heartbeat_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        self._wake.set()
        for waiter in self.queue.shutdown():
            waiter._fail(self.id, ClientException("the client closed before the message was written"))
        self.transport.shutdown()
        logger.info(
            "client %d closed: %s %r after %.3fs (%d bytes in, %d bytes out)",
            self.id,
            self.close_code,
            self.close_reason,
            time.time() - self.connected_at,
            self.bytes_read,
            self.queue.bytes_sent,
        )
        self.gateway.stats.closed(self.close_code, self.traffic())
        try:
            self.gateway.callbacks.on_close(self.id, self.close_code, self.close_reason)
        except Exception:
            logger.exception("client %d: exception in on_close", self.id)
        finally:
            self.gateway._unregister(self)

    # -- any thread

    @property
    def compression(self) -> bool:
        """Whether permessage-deflate was negotiated."""
        return self._deflater is not None

    def encoding_key(self, size: int) -> Hashable | None:
        """Clients with equal keys get the same bytes for one message; ``None``: encode per client."""
        deflater = self._deflater
        if deflater is None or size < self._compression_threshold:
            return self._frame_size
        params = deflater.params
        if params.server_no_context_takeover:
            return (self._frame_size, params.server_window_bits, self._options.compression_memory_level)
        return None

    def frames_for(self, opcode: int, payload: bytes) -> list[bytes] | Callable[[], list[bytes]]:
        """The frames of a message, or a function building them in queue order (compression)."""
        deflater = self._deflater
        if deflater is None or len(payload) < self._compression_threshold:
            return encode_message(opcode, payload, self._frame_size)
        if deflater.params.server_no_context_takeover:
            return self.shared_frames(opcode, payload)
        return lambda: encode_message(opcode, deflater.compress(payload), self._frame_size, True)

    def shared_frames(self, opcode: int, payload: bytes) -> list[bytes]:
        """The frames for every client with this client's :meth:`encoding_key` (not ``None``)."""
        deflater = self._deflater
        if deflater is None or len(payload) < self._compression_threshold:
            return encode_message(opcode, payload, self._frame_size)
        compressed = compress_once(payload, deflater.params.server_window_bits, self._options.compression_memory_level)
        return encode_message(opcode, compressed, self._frame_size, True)

    def send_frames(self, frames: list[bytes] | Callable[[], list[bytes]], waiter: Waiter | None) -> bool:
        """Queue a message; False when the client is closing or gone."""
        queued = self.queue.put(frames, waiter)
        if queued < 0:
            return False
        self._check_queue(queued)
        return True

    def _check_queue(self, queued: int, grace: float = SEND_QUEUE_GRACE) -> None:
        """Close a client that is not keeping up with what is sent to it.

        That is: more than ``max_send_queue`` bytes queued while its socket
        has stayed full for ``grace`` seconds. A client reading at the speed
        of its link drains a 20 MiB message in a moment and is not closed for
        it; one that stopped reading is, at the first send after ``grace``.
        """
        limit = self._options.max_send_queue
        if limit is None or queued <= limit:
            return
        since = self.queue.backlog_since
        if since and time.monotonic() - since >= grace:
            logger.warning(
                "client %d: %d bytes queued and its socket full for %.1f s, over max_send_queue; closing",
                self.id,
                queued,
                time.monotonic() - since,
            )
            self.close(1008, "Send queue limit exceeded", drop_queued=True)

    def close(self, code: int, reason: str, *, drop_queued: bool = False) -> bool:
        """Start the closing handshake; False if the client was already closing.

        Returns at once: the close frame goes out after the data already queued
        (or instead of it, with ``drop_queued``), and the TCP connection is
        closed when the peer answers or after ``close_period``.
        """
        with self.queue.lock:
            if self.state != OPEN:
                return False
            self._set_closing_locked(code, reason)
            dropped = self.queue.put_close(encode_close(code, reason.encode()), drop_queued=drop_queued)
        self._wake.set()
        self._close_handle = shared_timer().call_later(self._options.close_period, self._close_deadline)
        self.queue.flush()
        for waiter in dropped:
            waiter._fail(self.id, ClientException("the client was closed before the message was written"))
        return True

    def _set_closing_locked(self, code: int, reason: str) -> None:
        assert self.queue.lock.locked()
        self.state = CLOSING
        self.close_code = code
        self.close_reason = reason
        self.closed_at = time.time()

    # -- the timer thread

    def _close_deadline(self) -> None:
        """The closing handshake did not finish in time: drop TCP, and say whose fault it is."""
        if self.state == CLOSED:
            return
        busy = self.busy_in()
        if busy is None:
            logger.info("client %d: no close frame from the peer within close_period", self.id)
        elif self._warned_call != self._callback_calls:
            # The peer may well have answered: this thread cannot read its close frame
            # while it runs the handler.
            self._warned_call = self._callback_calls
            logger.warning(
                "client %d: %s has been running for %.1f s while the client is closing; the thread is blocked in "
                "your code, so the closing handshake cannot finish: dropping the connection (return from %s, or "
                "hand long work to your own thread)",
                self.id,
                busy[0],
                busy[1],
                busy[0],
            )
        self.transport.shutdown()

    def _heartbeat(self) -> None:
        if self.state != OPEN:
            return
        period = self._options.heartbeat_period
        assert period is not None
        now = time.monotonic()
        quiet_since = self._last_read_mono
        if self._waiting:
            quiet_since = max(quiet_since, self._waiting_since)
        quiet = now - quiet_since
        if quiet < period:
            self._heartbeat_handle = shared_timer().call_later(period - quiet, self._heartbeat)
            return
        # Pongs only count as missing while this client's thread is listening for
        # them: a handler busy in on_data is not a dead peer.
        if self._waiting and self.pings_sent - self.pongs_received >= self._options.queued_ping_limit:
            self.close(1008, "Exceeded unanswered PING limit")
            return
        self.pings_sent += 1
        self._last_ping_at = now
        self._check_queue(self.queue.put_control(encode_frame(OP_PING, str(self.pings_sent).encode())), grace=0.0)
        self._heartbeat_handle = shared_timer().call_later(period, self._heartbeat)
