"""Connection: the I/O around one client's protocol session, run by the thread that upgraded it.

That thread reads the socket, feeds the :class:`~syncaerys.protocol.session.Session`,
acts on its events (queues pongs, answers close frames) and calls ``on_open``,
``on_data`` (one message at a time, in order) and, exactly once, ``on_close``.
``Message.result()`` keeps reading in the same thread. Writes go through the
client's :class:`~syncaerys.client.sendqueue.SendQueue`; heartbeats and close
deadlines run on the shared timer.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Final

from ..exceptions import ClientClosed
from ..exceptions import ClientException
from ..futures import SendFuture
from ..futures import resolve_unshared
from ..message import Message
from ..options import Options
from ..protocol.deflate import DeflateParams
from ..protocol.frames import OP_CONT
from ..protocol.frames import Encoded
from ..protocol.logsafe import printable
from ..protocol.parser import Frame
from ..protocol.ratelimit import TokenBucket
from ..protocol.session import CloseReceived
from ..protocol.session import Event
from ..protocol.session import PingReceived
from ..protocol.session import PongReceived
from ..protocol.session import ProtocolViolation
from ..protocol.session import Session
from ..protocol.session import State
from .handler import Handler
from .hub_watch import HubWatch
from .hub_watch import hub_watch
from .info import ClientInfo
from .log import client_logger
from .sendqueue import ENTRY_COST
from .sendqueue import SEND_QUEUE_GRACE
from .sendqueue import WRITTEN_UNTOLD
from .sendqueue import SendQueue
from .sendqueue import Waiter
from .sendqueue import shared_flusher
from .stats import GatewayStats
from .stats import Totals
from .timer import TimerHandle
from .timer import shared_timer
from .transport import Transport

__all__ = ["Connection", "ClientContext", "SEND_QUEUE_GRACE"]

logger = logging.getLogger("syncaerys.connection")

# The clocks, bound once: compiled (mypyc), a Final is a C static where time.monotonic
# would be a lookup in the module's dict at every read and send.
_monotonic: Final = time.monotonic
_wall_time: Final = time.time
_OPEN: Final = State.OPEN

#: Under gevent (monkey-patched), frames a client's greenlet parses before it lets the others run.
GEVENT_YIELD_EVERY: Final = 64

#: The size of each connection's reusable read buffer, used unless a frame
#: larger than it is known to be on its way (see ``Connection._receive``).
BUFFER_SIZE: Final = 1 << 10


@dataclass(frozen=True)
class ClientContext:
    """What a gateway gives each of its connections (one instance shared by all)."""

    options: Options
    callbacks: Handler
    stats: GatewayStats
    #: Whether the gateway is stopping (no more ``on_data``).
    stopping: Callable[[], bool]
    #: Called once, last, when a connection is over (``on_close`` has run).
    finished: Callable[[Connection], None]


class Connection:
    """One client: its session, its send queue, its timers, and the loop its thread runs.

    :meth:`run`, :meth:`next_data_frame` and :meth:`received` belong to the
    client's thread; everything else is thread-safe and never blocks.

    ``_lock`` guards the session's transitions with the queueing of their
    frames, and ``closed_at``. Three kinds of field cross threads without it,
    on purpose (each a single attribute store or load; ``tests/test_races.py``
    hammers them):

    * ``_waiting``, ``_waiting_since`` and ``_last_read_mono`` are written by the
      client's thread and read by the timer's heartbeat. A stale read moves a
      ping or the unanswered-ping close by at most one read: the same outcome
      as the peer's bytes arriving a moment earlier or later.
    * ``_heartbeat_handle`` is replaced by the heartbeat and cancelled by
      :meth:`_finish`. A heartbeat that reschedules itself just as the client
      finishes leaves one call that finds the session closed and returns.
    * ``_close_handle`` is set by :meth:`close` after its transition. A close
      deadline that fires after the client finished finds it closed and returns.
    """

    __slots__ = (
        "_buffer",
        "_byte_budget",
        "_callback",
        "_callback_calls",
        "_callback_since",
        "_close_handle",
        "_context",
        "_debug",
        "_direct",
        "_frame_budget",
        "_frame_extras",
        "_frames_since_yield",
        "_heartbeat_handle",
        "_hub_blocked_call",
        "_hub_blocked_events",
        "_hub_watch",
        "_inflated_charged",
        "_inflates",
        "_last_read_mono",
        "_lock",
        "_log",
        "_message_since",
        "_options",
        "_user_data",
        "_waiting",
        "_waiting_since",
        "_wake",
        "_warned_call",
        "_yield_every",
        "closed_at",
        "connected_at",
        "id",
        "last_data_read_at",
        "last_read_at",
        "path",
        "queue",
        "remote_address",
        "session",
        "subprotocol",
        "transport",
    )

    def __init__(
        self,
        context: ClientContext,
        transport: Transport,
        client_id: int,
        remote_address: str,
        subprotocol: str | None,
        path: str,
        deflate: DeflateParams | None = None,
    ) -> None:
        options = context.options
        self.id = client_id
        self.transport = transport
        self._direct = transport.direct  # read once: the transport is this connection's for good
        self.remote_address = remote_address
        self.subprotocol = subprotocol
        self.path = path
        self._context = context
        self._options = options
        self._log = client_logger(logger, client_id)
        self.session = Session(
            max_frame_size=options.max_frame_size,
            max_message_size=options.max_message_size,
            text_only=options.text_only,
            deflate=deflate,
            auto_frame_size=options.auto_frame_size,
            compression_threshold=options.compression_threshold,
            compression_memory_level=options.compression_memory_level,
            clock=time.monotonic,
        )
        # Serializes the session's state transitions with queueing their frames, so
        # that the close frame is queued by the one thread whose transition won.
        self._lock = threading.Lock()
        # Held until the gateway has written the 101 (see release()).
        self.queue = SendQueue(
            transport, client_id, shared_flusher(), held=True, limit=options.max_send_queue, overflow=self._overflow
        )
        self.connected_at = _wall_time()
        self.closed_at = 0.0
        self.last_read_at = 0.0
        self.last_data_read_at = 0.0
        # For the heartbeat: when the peer was last heard from, and whether this
        # thread is blocked waiting for it (only then do unanswered pings count).
        self._last_read_mono = _monotonic()
        self._waiting = False
        self._waiting_since = 0.0
        now = _monotonic()
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
        # Set when the client starts closing, to end a rate-limit pause early; only
        # rate-limited clients pause (an Event costs 1.5 KiB per idle connection).
        limited = self._byte_budget is not None or self._frame_budget is not None
        self._wake = threading.Event() if limited else None
        # The handler method this client's thread is in (None while it reads frames).
        self._callback: Callable[..., Any] | None = None
        self._callback_since = 0.0
        self._callback_calls = 0
        self._warned_call = 0
        self._inflates = deflate is not None
        self._inflated_charged = 0
        # When the frame or message being received began arriving (monotonic), 0.0 between messages.
        self._message_since = 0.0
        # Under gevent, frames between two yields to its hub (0: real threads, which the OS preempts).
        on_gevent = _on_gevent()
        self._yield_every = GEVENT_YIELD_EVERY if on_gevent else 0
        self._frames_since_yield = 0
        # Whether _after_frame has anything to do (fixed for the connection's life).
        self._frame_extras = bool(self._yield_every) or (self._inflates and self._byte_budget is not None)
        # Under gevent: which callback call gevent's monitor saw blocking the hub, and how many times.
        self._hub_watch: HubWatch | None = hub_watch() if on_gevent else None
        self._hub_blocked_call = 0
        self._hub_blocked_events = 0
        self._heartbeat_handle: TimerHandle | None = None
        self._close_handle: TimerHandle | None = None
        self._buffer = memoryview(bytearray(BUFFER_SIZE))
        self._debug = logger.isEnabledFor(logging.DEBUG)
        # The application's per-client dict (Endpoint.client_data), made at its first use.
        self._user_data: dict[str, Any] | None = None

    def user_data(self) -> dict[str, Any]:
        """The application's dict for this client, made at the first call. Thread-safe; never blocks."""
        data = self._user_data
        if data is None:
            with self._lock:
                if self._user_data is None:
                    self._user_data = {}
                data = self._user_data
        return data

    @property
    def is_open(self) -> bool:
        """Whether the client is open (it may be sent to). Thread-safe; never blocks."""
        return self.session.state is State.OPEN

    @property
    def compression(self) -> bool:
        """Whether permessage-deflate was negotiated. Thread-safe; never blocks."""
        return self.session.compression

    # -- the client's thread

    def release(self) -> None:
        """The 101 is written: frames queued meanwhile may go out now. Call once, from the handshake; never blocks."""
        self.queue.release()

    def run(self, handshake_data: Any, opened: Callable[[], None] | None = None) -> None:
        """Serve the client until the connection ends; calls ``on_close`` once. Blocks.

        ``opened`` is called once ``on_open`` has returned (the gateway's
        handshake accounting).
        """
        callbacks = self._context.callbacks
        if self._options.heartbeat_period is not None:
            self._heartbeat_handle = shared_timer().call_later(self._options.heartbeat_period, self._heartbeat)
        self._log.info("opened from %s on %s", printable(self.remote_address), printable(self.path))
        if self._hub_watch is not None:
            self._hub_watch.serving(self)
        try:
            try:
                self._call_handler(callbacks.on_open, self.id, handshake_data)
            finally:
                if opened is not None:
                    opened()
            while self._handle_next():
                pass
        except Exception:
            self._log.exception("unexpected error in its connection loop")
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
        if frame.opcode == OP_CONT or self.session.state is not _OPEN or self._context.stopping():
            # Data of a message that is being dropped (closing, stopping).
            return True
        message = Message(self, frame)
        self._call_handler(self._context.callbacks.on_data, self.id, message)
        message.close()
        return True

    def _call_handler(self, method: Callable[..., Any], *args: Any) -> None:
        watch = self._hub_watch
        iteration = watch.loop_iteration() if watch is not None else -1
        self._callback = method
        self._callback_since = _monotonic()
        self._callback_calls += 1
        try:
            method(*args)
        except ClientException:
            if self.is_open:
                self._log.exception("handler raised ClientException while open")
                self.close(1011, "Internal server error, aborting")
        except Exception:
            self._log.exception("exception in %s", _name_of(method))
            self.close(1011, "Internal server error, aborting")
        finally:
            self._callback = None
            if self._hub_blocked_call == self._callback_calls:
                self._warn_hub_blocked(method, iteration)

    def hub_blocked(self, threshold: float) -> None:
        """gevent's monitor saw the hub not run for ``threshold`` s while this client's greenlet ran.

        Called on gevent's monitor thread (see :mod:`.hub_watch`): it only sets
        two attributes, and only while a callback runs; the callback's own
        greenlet logs once it returns. Never blocks.
        """
        if self._callback is None:
            return
        calls = self._callback_calls
        if self._hub_blocked_call != calls:
            self._hub_blocked_events = 0
            self._hub_blocked_call = calls
        self._hub_blocked_events += 1

    def _warn_hub_blocked(self, method: Callable[..., Any], iteration: int) -> None:
        watch = self._hub_watch
        assert watch is not None
        took = _monotonic() - self._callback_since
        if iteration != -1 and watch.loop_iteration() == iteration:
            # The hub's loop did not run once during the call: it was blocked for all of it.
            blocked = f"{took:.2f} s"
        else:
            blocked = f"at least {self._hub_blocked_events * watch.threshold:.2f} s (of a {took:.2f} s call)"
        self._log.warning(
            "%s blocked gevent's event loop for %s: no other client was served meanwhile. gevent cannot make "
            "that call cooperative (C code that waits: a database driver or library gevent does not patch, "
            "a lock, hashing); serve this handler on the threaded host (syncaerys.run(), gunicorn -k gthread), "
            "where each client has a thread of its own",
            getattr(method, "__qualname__", _name_of(method)),
            blocked,
        )

    def info(self) -> ClientInfo:
        """A snapshot of this client's statistics. Thread-safe; never blocks."""
        session = self.session
        queue = self.queue
        return ClientInfo(
            bytes_read=session.bytes_read,
            bytes_sent=queue.bytes_sent,
            frames_read=session.frames_read,
            frames_sent=queue.frames_sent,
            messages_read=session.messages_read,
            messages_sent=queue.messages_sent,
            connected_at=self.connected_at,
            closed_at=self.closed_at,
            close_code=session.close_code,
            close_reason=session.close_reason,
            last_read_at=self.last_read_at,
            last_sent_at=queue.last_sent_at,
            last_data_read_at=self.last_data_read_at,
            last_data_sent_at=queue.last_data_sent_at,
            remote_address=self.remote_address,
            subprotocol=self.subprotocol,
            compression=session.compression,
            send_queue_bytes=queue.queued_bytes,
            pings_sent=session.pings_sent,
            pongs_received=session.pongs_received,
            latency=session.latency,
        )

    def traffic(self) -> Totals:
        """This client's traffic so far (for the gateway's statistics). Thread-safe; never blocks."""
        queue = self.queue
        session = self.session
        return Totals(
            session.bytes_read,
            queue.bytes_sent,
            session.messages_read,
            queue.messages_sent,
            session.frames_read,
            queue.frames_sent,
        )

    def busy_in(self) -> tuple[str, float] | None:
        """The callback this client's thread is running and for how long, or ``None``. Thread-safe; never blocks."""
        method = self._callback
        if method is None:
            return None
        return _name_of(method), _monotonic() - self._callback_since

    def next_data_frame(self, deadline: float | None) -> Frame | None:
        """Return the next data frame, acting on control frames on the way. Blocks.

        Returns ``None`` when the connection is over (closing handshake done,
        protocol error, TCP drop). Raises :class:`TimeoutError` when
        ``deadline`` (a ``time.monotonic()`` value) passes first. The client's
        thread only (it is the :class:`~syncaerys.message.FrameSource` of its messages).
        """
        session = self.session
        parser = session.parser
        frame_budget = self._frame_budget
        event: Event | None
        while not session.reading_done:
            if frame_budget is not None and frame_budget.level < 0:
                # Before taking the next frame: a timeout raised here loses nothing.
                self._throttle(deadline)
            if not parser.receiving:
                # Nothing buffered, no message begun: no frame can be ready (and no
                # error pending), so straight to the read, which needs no more hints.
                event = self._receive(deadline, True)
                if event is None:
                    event = session.next_event()
                    if event is None:
                        continue
            else:
                event = session.next_event()
                if event is None:
                    self._receive(deadline, False)
                    continue
            if frame_budget is not None:
                # Billed per frame, not per read: one read may hold thousands.
                frame_budget.spend(1, _monotonic())
            if self._frame_extras:
                self._after_frame()
            if isinstance(event, Frame):
                if self._debug:
                    self._log.debug("< %s fin=%s %d", event.opcode, event.fin, len(event.data))
                self.last_data_read_at = self.last_read_at
                if event.fin:
                    self._message_since = 0.0
                return event
            self._act_on(event)
        return None

    def _after_frame(self) -> None:
        """Per-frame work that only some connections have: gevent's yields, the inflated-bytes charge."""
        if self._yield_every:
            self._frames_since_yield += 1
            if self._frames_since_yield >= self._yield_every:
                # gevent's recv and send return without switching while data flows: a client
                # streaming tiny frames would keep every other greenlet waiting. (time.sleep
                # is gevent's, patched: sleep(0) lets the hub run the others.)
                self._frames_since_yield = 0
                time.sleep(0)
        if self._inflates and self._byte_budget is not None:
            # Charged on what the client makes us inflate, not on its compressed bytes.
            inflated = self.session.inflated_bytes
            if inflated > self._inflated_charged:
                self._byte_budget.spend(inflated - self._inflated_charged, _monotonic())
                self._inflated_charged = inflated

    def _act_on(self, event: PingReceived | PongReceived | CloseReceived | ProtocolViolation) -> None:
        if self._debug:
            self._log.debug("< %r", event)
        if type(event) is PingReceived:
            self.queue.put_pong(event.reply)
        elif type(event) is PongReceived:
            if event.latency is not None:
                self._context.stats.latency(event.latency)
        elif type(event) is CloseReceived:
            with self._lock:
                reply = self.session.close_received(event.code, event.reason)
                if reply is not None:
                    self.closed_at = _wall_time()
                    self.queue.put_last(reply)
            if reply is not None:
                self.queue.flush()
                self.queue.wait_drained(self._options.close_period)
        elif type(event) is ProtocolViolation:
            error = event.error
            self._log.info("protocol error: %s", error)
            if self.close(error.code, error.reason):
                self.queue.wait_drained(self._options.close_period)

    def _receive(self, deadline: float | None, empty: bool) -> Frame | None:
        """Read once and feed the session; ``empty``: nothing is buffered (``parser.receiving`` is False).

        Returns the data frame when the read held exactly one whole message and
        nothing was buffered (it is then not fed: the caller takes it as from
        :meth:`Session.next_event`); otherwise ``None``.
        """
        if self._byte_budget is not None:
            self._throttle(deadline)
        transport = self.transport
        session = self.session
        parser = session.parser
        # Reads go into this connection's small reusable buffer and only what
        # came is copied out, in an object of its exact size. The alternative,
        # recv(64 KiB), allocates 64 KiB that the thread holds while it waits
        # and that is then shrunk in place: with a thread per client, glibc's
        # heap fills with 64 KiB holes pinned by the small survivors, and RSS
        # grew by over 1 GiB in a soak of 1,000 clients. The rest of a frame
        # known to be larger than the buffer is read straight into one buffer
        # of the frame's size (the session's), never past the frame's end.
        large = None if empty or parser.missing <= BUFFER_SIZE else session.receive_buffer()
        buffer = self._buffer if large is None else large
        # Between messages with no reader's deadline, the read is all there is to wait
        # for: _wait_readable's answer without its calls (one message, one read).
        idle = deadline is None and (empty or self._options.message_timeout is None or not parser.receiving)
        if idle:
            self._message_since = 0.0  # as _message_due does
        # Listening for the peer from here (the heartbeat counts unanswered pings only then).
        self._waiting_since = _monotonic()
        self._waiting = True
        try:
            # (Its TimeoutError, an OSError, is the reader's: not a lost connection.)
            if not idle and not self._wait_readable(deadline):
                return None
            try:
                direct = self._direct
                count = transport.recv_into(buffer) if direct is None else direct.recv_into(buffer)
            except OSError:
                count = 0
        finally:
            self._waiting = False
        if not count:
            with self._lock:
                session.connection_lost()
            return None
        if large is None:
            # received()'s work, inline: every read of small messages comes here.
            self._last_read_mono = now = _monotonic()
            self.last_read_at = _wall_time()
            if self._byte_budget is not None:
                self._byte_budget.spend(count, now)
            if empty:
                # One whole message alone in the read (the common case) is parsed where it was read.
                frame = session.take_alone(buffer[:count])
                if frame is not None:
                    return frame
            session.receive_data(bytes(buffer[:count]))
        else:
            self._note_read(count)
            session.received_into(count)
        return None

    def _wait_readable(self, deadline: float | None) -> bool:
        """Wait for data up to the reader's ``deadline`` or the message's; False when the message ran out of time.

        Raises :class:`TimeoutError` when the reader's deadline comes first.
        """
        due = self._message_due()
        if due is not None and (deadline is None or due < deadline):
            remaining = due - _monotonic()
            if remaining <= 0 or not self.transport.wait_readable(remaining):
                self._log.info(
                    "a message not whole %.1f s after it began (message_timeout); closing",
                    self._options.message_timeout,
                )
                self.close(1008, "Message not completed within message_timeout")
                return False
        elif deadline is not None:
            remaining = deadline - _monotonic()
            if remaining <= 0 or not self.transport.wait_readable(remaining):
                raise TimeoutError("no data from the client before the timeout")
        return True

    def _message_due(self) -> float | None:
        """When the frame or message being received must be whole (``message_timeout``); None if no deadline runs."""
        timeout = self._options.message_timeout
        if timeout is None or not self.session.receiving or not self.is_open:
            self._message_since = 0.0
            return None
        if not self._message_since:
            # Its first bytes came with the last read.
            self._message_since = self._last_read_mono
        return self._message_since + timeout

    def received(self, data: bytes) -> None:
        """Take bytes the client sent, read here or by the host server before the 101.

        The client's thread, or before :meth:`run`: they are parsed before anything read later.
        Not thread-safe (the reading side of the session); never blocks.
        """
        self._last_read_mono = now = _monotonic()
        self.last_read_at = _wall_time()
        if self._byte_budget is not None:
            self._byte_budget.spend(len(data), now)
        self.session.receive_data(data)

    def _note_read(self, count: int) -> None:
        """What a read of ``count`` bytes into a large frame's own buffer changes (``received`` does it inline)."""
        self._last_read_mono = _monotonic()
        self.last_read_at = _wall_time()
        if self._byte_budget is not None:
            self._byte_budget.spend(count, self._last_read_mono)

    def _throttle(self, deadline: float | None) -> None:
        """Stop reading (TCP backpressure) while an inbound budget is spent.

        Raises :class:`TimeoutError` when ``deadline`` (a reader's timeout)
        comes before the budget refills.
        """
        while self.is_open:
            now = _monotonic()
            delay = 0.0
            if self._frame_budget is not None:
                delay = self._frame_budget.delay(now)
            if self._byte_budget is not None:
                delay = max(delay, self._byte_budget.delay(now))
            if delay <= 0:
                return
            if deadline is not None and now + delay > deadline:
                assert self._wake is not None
                self._wake.wait(max(0.0, deadline - now))
                if _monotonic() >= deadline:
                    raise TimeoutError("no data from the client before the timeout (its reads are rate-limited)")
                continue
            if self._debug:
                self._log.debug("rate limit, pausing reads for %.3fs", delay)
            assert self._wake is not None
            self._wake.wait(delay)

    def _finish(self) -> None:
        with self._lock:
            self.session.connection_lost()
            if not self.closed_at:
                self.closed_at = _wall_time()
        for handle in (self._heartbeat_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        if self._wake is not None:
            self._wake.set()
        for waiter in self.queue.shutdown():
            waiter.message_failed(self.id, ClientClosed("the client closed before the message was written"))
        self.transport.shutdown()
        session = self.session
        self._log.info(
            "closed: %s %r after %.3fs (%d bytes in, %d bytes out)",
            session.close_code,
            session.close_reason,
            _wall_time() - self.connected_at,
            session.bytes_read,
            self.queue.bytes_sent,
        )
        self._context.stats.closed(session.close_code, self.traffic())
        on_close = self._context.callbacks.on_close
        watch = self._hub_watch
        iteration = watch.loop_iteration() if watch is not None else -1
        self._callback = on_close  # for busy_in(): a stop waiting for this client names on_close
        self._callback_since = _monotonic()
        self._callback_calls += 1
        try:
            on_close(self.id, session.close_code, session.close_reason)
        except Exception:
            self._log.exception("exception in on_close")
        finally:
            self._callback = None
            if watch is not None:
                if self._hub_blocked_call == self._callback_calls:
                    self._warn_hub_blocked(on_close, iteration)
                watch.done()
            self._context.finished(self)

    # -- any thread

    def encode(self, opcode: int, payload: bytes) -> Encoded:
        """This client's frames of a message (see :meth:`Session.encode`).

        Thread-safe; never blocks. A function returned (compression with this
        client's context) is called by :meth:`send`, under the queue's lock, so
        that the peer's decompressor sees messages in queue order.
        """
        return self.session.encode(opcode, payload)

    def send_message(self, opcode: int, payload: bytes) -> SendFuture[int] | None:
        """Encode and queue one message for this client: its future, or ``None`` when it is closing or gone.

        The future resolves to the bytes written (see :meth:`Endpoint.send`).
        Thread-safe; never blocks (as :meth:`send`, whose work it does without the call).
        """
        future: SendFuture[int] = SendFuture()
        encoded = self.session.encode(opcode, payload)
        if not isinstance(encoded, bytes):
            return future if self.queue.put(encoded, future) is not None else None
        queued = self.queue.put(encoded, future, tell_written_now=False)
        if queued == WRITTEN_UNTOLD:
            # Written at once: no other thread has the future yet, so no lock is needed to resolve it.
            resolve_unshared(future, len(encoded))
        return future if queued is not None else None

    def send(
        self,
        frames: Encoded,
        waiter: Waiter | None,
        *,
        tell_written_now: bool = True,
    ) -> int | None:
        """Queue a message's frames (from :meth:`encode`); ``None`` when the client is closing or gone.

        Otherwise the bytes still queued, or
        :data:`~syncaerys.client.sendqueue.WRITTEN_UNTOLD` (see
        :meth:`SendQueue.put`'s ``tell_written_now``). ``waiter`` is told when the
        frames are written, or fail; not when ``None`` is returned. Thread-safe;
        never blocks: what the socket does not take now is left to the flusher.
        """
        return self.queue.put(frames, waiter, tell_written_now=tell_written_now)

    def _overflow(self, charge: int, full_for: float) -> None:
        """The send queue is over ``max_send_queue`` past its grace, or over its ceiling: close.

        Called by the queue, on a sender's thread or the flusher's, whether
        or not anything more is sent. A client reading at the speed of its
        link drains a 20 MiB message in a moment and is not closed for it.
        """
        if self.close(1008, "Send queue limit exceeded", drop_queued=True):
            self._log.warning(
                "%d bytes queued (counting %d per frame), over max_send_queue=%d, its socket full for %.1f s; closing",
                charge,
                ENTRY_COST,
                self._options.max_send_queue,
                full_for,
            )

    def close(self, code: int, reason: str, *, drop_queued: bool = False) -> bool:
        """Start the closing handshake; False if the client was already closing. Thread-safe; never blocks.

        The close frame goes out after the data already queued (or instead of
        it, with ``drop_queued``), and the TCP connection is closed when the
        peer answers or after ``close_period``.
        """
        with self._lock:
            frame = self.session.close(code, reason)
            if frame is None:
                return False
            self.closed_at = _wall_time()
            dropped = self.queue.put_last(frame, drop_queued=drop_queued)
        if self._wake is not None:
            self._wake.set()
        self._close_handle = shared_timer().call_later(self._options.close_period, self._close_deadline)
        self.queue.flush()
        for waiter in dropped:
            waiter.message_failed(self.id, ClientClosed("the client was closed before the message was written"))
        return True

    # -- the timer thread

    def _close_deadline(self) -> None:
        """The closing handshake did not finish in time: drop TCP, and say whose fault it is."""
        if self.session.state is State.CLOSED:
            return
        busy = self.busy_in()
        if busy is None or self._waiting:
            # Not reading only if the handler is busy: waiting in message.result() it reads.
            self._log.info("no close frame from the peer within close_period")
        elif self._warned_call != self._callback_calls:
            # The peer may well have answered: this thread cannot read its close frame
            # while it runs the handler.
            self._warned_call = self._callback_calls
            self._log.warning(
                "%s has been running for %.1f s while the client is closing; the thread is blocked in your code, "
                "so the closing handshake cannot finish: dropping the connection (return from %s, or hand long "
                "work to your own thread)",
                busy[0],
                busy[1],
                busy[0],
            )
        self.transport.shutdown()

    def _heartbeat(self) -> None:
        if not self.is_open:
            return
        period = self._options.heartbeat_period
        assert period is not None
        now = _monotonic()
        quiet_since = self._last_read_mono
        if self._waiting:
            quiet_since = max(quiet_since, self._waiting_since)
        quiet = now - quiet_since
        if quiet < period:
            self._heartbeat_handle = shared_timer().call_later(period - quiet, self._heartbeat)
            return
        # Pongs only count as missing while this client's thread is listening for
        # them: a handler busy in on_data is not a dead peer.
        if self._waiting and self.session.unanswered_pings >= self._options.queued_ping_limit:
            self.close(1008, "Exceeded unanswered PING limit")
            return
        with self._lock:
            ping = self.session.ping()
        if ping is None:
            return
        self.queue.put_control(ping)
        self._heartbeat_handle = shared_timer().call_later(period, self._heartbeat)


def _on_gevent() -> bool:
    """Whether gevent has monkey-patched the socket module (each client is then a greenlet, not a thread)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def _name_of(method: Callable[..., Any]) -> str:
    return getattr(method, "__name__", "handler")
