"""Outbound frames: one bounded queue per client and one shared flusher thread.

A sender writes directly with a non-blocking ``send`` when the client's queue
is empty (the common case); whatever the socket does not take is left in the
queue and the :class:`Flusher` (one ``selectors`` loop for the whole process)
writes it when the socket becomes writable. So a slow peer never blocks the
caller, and a broadcast never waits for one client.

The queue also enforces its limit by itself: each entry is charged what it
costs in memory, not only its bytes, and a queue over its limit whose socket
has stayed full for the grace period (or over the hard ceiling at once) is
reported to its owner, whether or not anything else is sent: the flusher
looks at the queues it watches a few times a second.
"""

from __future__ import annotations

import enum
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final
from typing import Protocol

from ..exceptions import ClientClosed
from ..protocol.frames import Encoded
from ..protocol.frames import OutFrame
from ..protocol.frames import frame_length
from .transport import DONTWAIT
from .transport import Transport

__all__ = ["SendQueue", "QueueState", "Flusher", "Waiter", "shared_flusher", "SEND_QUEUE_GRACE", "ENTRY_COST"]

logger = logging.getLogger("syncaerys.connection")

# The clocks, bound once: compiled (mypyc), a Final is a C static where time.monotonic
# would be a lookup in the module's dict at every read and send.
_monotonic: Final = time.monotonic
_wall_time: Final = time.time
_DONTWAIT: Final = DONTWAIT

#: How long a client's socket may stay full while its queue is over the limit.
SEND_QUEUE_GRACE: Final = 1.0
#: Over this many times the limit, a queue is reported at once, whatever the grace.
SEND_QUEUE_CEILING = 4
#: What a queued frame costs beyond its bytes: the bytes object, its entry, the
#: deque's slot and a message's future (tracemalloc, CPython 3.11: 108 bytes
#: without a future, 190 with one).
ENTRY_COST: Final = 192
#: How often the flusher looks for queues past their grace.
CHECK_INTERVAL = SEND_QUEUE_GRACE / 4


class QueueState(enum.Enum):
    """Where a :class:`SendQueue` is in its life; :data:`TRANSITIONS` says what moves it."""

    #: Before the 101 is written: frames are queued, nothing is written.
    HELD = "held"
    #: Held, and the last frame (the close frame) is queued.
    HELD_SEALED = "held, sealed"
    #: Nothing queued: a sender writes directly (the fast path).
    OPEN = "open"
    #: The socket was full: the flusher writes, senders queue behind.
    FLUSHING = "flushing"
    #: The last frame is queued: data is refused, what is queued is still written.
    SEALED = "sealed"
    #: Sealed, and the flusher writes.
    SEALED_FLUSHING = "sealed, flushing"
    #: The socket failed or the queue was shut down: nothing more is written.
    BROKEN = "broken"

    # Members are singletons compared by identity; Enum's own __hash__ (a Python
    # call hashing the name) cost a call on every put() and every transition.
    __hash__ = object.__hash__


#: The states in which data messages are accepted.
ACCEPTING: Final = frozenset({QueueState.HELD, QueueState.OPEN, QueueState.FLUSHING})

_S = QueueState
_OPEN: Final = QueueState.OPEN
#: (state, event) -> next state; any other pair is a bug. BROKEN absorbs every event.
TRANSITIONS: dict[tuple[QueueState, str], QueueState] = {
    (_S.HELD, "release"): _S.OPEN,
    (_S.HELD, "seal"): _S.HELD_SEALED,
    (_S.HELD_SEALED, "release"): _S.SEALED,
    (_S.OPEN, "seal"): _S.SEALED,
    (_S.OPEN, "watch"): _S.FLUSHING,
    (_S.FLUSHING, "seal"): _S.SEALED_FLUSHING,
    (_S.FLUSHING, "drained"): _S.OPEN,
    (_S.SEALED, "watch"): _S.SEALED_FLUSHING,
    (_S.SEALED_FLUSHING, "drained"): _S.SEALED,
    **{(state, "break"): _S.BROKEN for state in QueueState},
    **{(_S.BROKEN, event): _S.BROKEN for event in ("release", "seal", "drained")},
}


#: What :meth:`SendQueue.put` returns with ``tell_written_now=False`` when the frames were all
#: written at once and the waiter was not told.
WRITTEN_UNTOLD: Final = -1


class Waiter(Protocol):
    """Told, once, when the message it is attached to was written, or will never be.

    Called from whichever thread wrote the last frame (a sender, the flusher)
    or gave up on it, outside the queue's lock: implementations must be quick
    and must not block.
    """

    def message_written(self, client_id: int, nbytes: int) -> None:
        """The whole message (``nbytes`` bytes, all frames) is on the socket."""

    def message_failed(self, client_id: int, error: BaseException) -> None:
        """The message will never be written (closed first, socket broken)."""


# A frame (bytes, or a header and a payload written with one sendmsg), and on
# the last frame of a message the waiter and the message's size.
Entry = tuple[OutFrame, "Waiter | None", int]


class SendQueue:
    """The bytes waiting to be written to one client's socket.

    Frames are queued whole and written in order with non-blocking sends;
    control frames (pings, pongs) may go out between the frames of a message,
    and at most one pong waits (the answer to the latest ping, as RFC 6455
    5.5.3 allows). After :meth:`put_last` (the close frame) no more data is
    accepted.

    With a ``limit``, ``overflow(charge, seconds_full)`` is called (once per
    check, outside the lock) when the queue's charge (its bytes plus
    :data:`ENTRY_COST` per frame) exceeds ``limit`` while the socket has
    stayed full for :data:`SEND_QUEUE_GRACE` (for control frames: at once),
    or exceeds ``SEND_QUEUE_CEILING * limit``; the owner closes the client.

    Thread-safe: ``_lock`` serializes the queue and the socket writes, and is
    never held while anything blocks or while a waiter runs. No call blocks
    except :meth:`wait_drained` and :meth:`shutdown` (which waits for the
    flusher to let go of the socket). The waiters of messages that a call
    writes are told in its thread, once the lock is released.
    """

    __slots__ = (
        "_control",
        "_data",
        "_direct",
        "_drained",
        "_entries",
        "_flusher",
        "_limit",
        "_lock",
        "_orphans",
        "_overflow",
        "_partial",
        "_pong",
        "_send",
        "_send_parts",
        "backlog_since",
        "bytes_sent",
        "client_id",
        "fileno",
        "frames_sent",
        "last_data_sent_at",
        "last_sent_at",
        "messages_sent",
        "queued_bytes",
        "state",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        client_id: int,
        flusher: Flusher,
        *,
        held: bool = False,
        limit: int | None = None,
        overflow: Callable[[int, float], None] | None = None,
    ) -> None:
        self.transport = transport
        self.fileno = transport.fileno
        self._send = transport.send_nowait
        self._direct = transport.direct
        self._send_parts = transport.send_parts_nowait
        self.client_id = client_id
        self._flusher = flusher
        self._lock = threading.Lock()
        # Made when the first message must wait (most are written at once by put()).
        self._data: deque[Entry] | None = None
        # Pings, made when the first comes (an idle connection keeps no deque for them).
        self._control: deque[Entry] | None = None
        # The one pong waiting, if any: a newer ping's answer replaces it.
        self._pong: Entry | None = None
        # A frame of which only part was written: the entry and the offset reached.
        self._partial: tuple[Entry, int] | None = None
        #: Bytes queued and not yet written.
        self.queued_bytes = 0
        # Frames queued (the partial one included): each costs ENTRY_COST besides its bytes.
        self._entries = 0
        self._limit = limit
        self._overflow = overflow
        #: Since when (``time.monotonic()``) the socket has taken nothing with bytes
        #: still queued; 0.0 while the queue drains as fast as it is filled.
        self.backlog_since = 0.0
        #: Written under the lock, through :meth:`_move` only; read anywhere.
        self.state = QueueState.HELD if held else QueueState.OPEN
        self._drained: threading.Event | None = None
        # Waiters of messages that can no longer be written (the socket broke),
        # failed by whichever thread next leaves the lock.
        self._orphans: list[Waiter] = []
        # Statistics, written under the lock.
        self.bytes_sent = 0
        self.frames_sent = 0
        #: Messages handed to :meth:`put`, refused ones included (as Aerys counts).
        self.messages_sent = 0
        self.last_sent_at = 0.0
        self.last_data_sent_at = 0.0

    # -- enqueueing (any thread)

    def put(
        self,
        frames: Encoded,
        waiter: Waiter | None,
        *,
        tell_written_now: bool = True,
    ) -> int | None:
        """Queue a data message's frames and write what the socket takes now.

        ``frames`` is one frame's ``bytes``, a list of frames, or a function
        that builds the list (:data:`~syncaerys.protocol.frames.Encoded`): it is called under the
        lock, so that a compressor with context sees messages in queue order.
        Returns the bytes still queued afterwards, or ``None`` (nothing is
        queued, ``waiter`` is not told) once the queue is sealed or broken.
        With ``tell_written_now=False``, frames written at once are not
        reported to ``waiter``: :data:`WRITTEN_UNTOLD` is returned instead,
        and the caller tells it (a fan-out counts them, then tells its
        tracker once).
        """
        done: list[tuple[Waiter, int]]
        with self._lock:
            self.messages_sent += 1
            state = self.state
            if state is not _OPEN and state not in ACCEPTING:
                return None
            if callable(frames):
                frames = frames()
            one: OutFrame | None
            if isinstance(frames, bytes):
                one = frames
            else:
                one = frames[0] if len(frames) == 1 else None
            if state is _OPEN and one is not None:
                # The common case, written without queueing: one frame, nothing ahead of it (OPEN is empty).
                frame = one
                try:
                    if isinstance(frame, bytes):
                        size = len(frame)
                        direct = self._direct
                        if direct is None:
                            sent = self._send(frame)
                        else:
                            try:  # what the transport's send_nowait does, without its call
                                sent = direct.send(frame, _DONTWAIT)
                            except BlockingIOError:
                                sent = 0
                    else:
                        head, body = frame
                        size = len(head) + len(body)
                        sent = self._send_parts(head, body)
                except OSError:
                    size = frame_length(frame)
                    sent = 0  # queued below: _write_some meets the error again and breaks the queue
                if sent == size:
                    now = _wall_time()
                    self.bytes_sent += size
                    self.frames_sent += 1
                    self.last_sent_at = self.last_data_sent_at = now
                    self.backlog_since = 0.0
                    written = True
                else:
                    written = False
                    self._entries += 1
                    if sent:
                        self.bytes_sent += sent
                        self.last_sent_at = self.last_data_sent_at = _wall_time()
                        self._partial = ((frame, waiter, size), sent)
                        self.queued_bytes += size - sent
                    else:
                        self._data_deque().append((frame, waiter, size))
                        self.queued_bytes += size
                    done = []
                    watch = self._write_locked(done)
                    queued = self.queued_bytes
                    over = self._over_limit_locked(SEND_QUEUE_GRACE)
            else:
                written = False
                if isinstance(frames, bytes):
                    frames = [frames]
                append = self._data_deque().append
                last = len(frames) - 1
                size = 0
                for index, frame in enumerate(frames):
                    size += frame_length(frame)
                    if index == last:
                        append((frame, waiter, size))
                    else:
                        append((frame, None, 0))
                self.queued_bytes += size
                self._entries += len(frames)
                done = []
                watch = self._write_locked(done)
                queued = self.queued_bytes
                over = self._over_limit_locked(SEND_QUEUE_GRACE)
        if written:
            if not tell_written_now:
                return WRITTEN_UNTOLD
            if waiter is not None:
                waiter.message_written(self.client_id, size)
            return 0
        self._after_write(watch, done, over)
        return queued

    def put_control(self, frame: bytes) -> int | None:
        """Queue a ping; it may go out between the frames of a message.

        Returns the bytes still queued, or ``None`` (nothing queued) once the
        queue is sealed: after a close frame only the closing handshake matters.
        Over the limit, ``overflow`` is called at once (no grace: a peer that
        does not read its pings is not keeping up).
        """
        return self._put_control(frame, pong=False)

    def put_pong(self, frame: bytes) -> int | None:
        """Queue a pong, replacing the one still waiting if any (RFC 6455 5.5.3); as :meth:`put_control`."""
        return self._put_control(frame, pong=True)

    def _put_control(self, frame: bytes, *, pong: bool) -> int | None:
        done: list[tuple[Waiter, int]] = []
        with self._lock:
            if self.state not in ACCEPTING:
                return None
            entry = (frame, None, 0)
            if not pong:
                if self._control is None:
                    self._control = deque()
                self._control.append(entry)
            elif self._pong is None:
                self._pong = entry
            else:
                self.queued_bytes -= len(self._pong[0])
                self._entries -= 1
                self._pong = entry
            self.queued_bytes += len(frame)
            self._entries += 1
            watch = self._write_locked(done)
            queued = self.queued_bytes
            over = self._over_limit_locked(0.0)
        self._after_write(watch, done, over)
        return queued

    def put_last(self, frame: bytes, *, drop_queued: bool = False) -> list[Waiter]:
        """Queue the last frame (the close frame) after the data already queued, and seal.

        With ``drop_queued`` the data not yet started is dropped instead; the
        waiters of dropped messages are returned for the caller to fail. The
        frame is written by the next :meth:`flush`. Call it once.
        """
        dropped: list[Waiter] = []
        with self._lock:
            self._move("seal")
            if drop_queued:
                dropped = self._drop_locked()
            self._data_deque().append((frame, None, 0))
            self.queued_bytes += len(frame)
            self._entries += 1
        return dropped

    def flush(self) -> None:
        """Write what the socket takes now; hand the rest to the flusher. Thread-safe; never blocks."""
        done: list[tuple[Waiter, int]] = []
        with self._lock:
            watch = self._write_locked(done)
        self._after_write(watch, done, None)

    def release(self) -> None:
        """Start writing a queue made with ``held=True`` (the socket is now the connection's). Never blocks."""
        done: list[tuple[Waiter, int]] = []
        with self._lock:
            self._move("release")
            watch = self._write_locked(done)
        self._after_write(watch, done, None)

    @property
    def broken(self) -> bool:
        """Whether the socket failed or the queue was shut down (nothing more is written). Never blocks."""
        return self.state is QueueState.BROKEN

    @property
    def charge(self) -> int:
        """What the queue holds, as the limit counts it: its bytes plus ENTRY_COST per frame. Never blocks."""
        return self.queued_bytes + self._entries * ENTRY_COST

    def _move(self, event: str) -> None:
        """Apply ``event`` to the state (see TRANSITIONS). Requires the lock."""
        assert self._lock.locked()
        try:
            self.state = TRANSITIONS[self.state, event]
        except KeyError:
            raise RuntimeError(f"send queue of client {self.client_id}: {event!r} in state {self.state}") from None

    def _data_deque(self) -> deque[Entry]:
        if self._data is None:
            self._data = deque()
        return self._data

    def _over_limit_locked(self, grace: float) -> tuple[int, float] | None:
        """(charge, seconds the socket has been full) when the owner must be told; requires the lock."""
        assert self._lock.locked()
        limit = self._limit
        if limit is None or self.state not in ACCEPTING:
            return None
        charge = self.queued_bytes + self._entries * ENTRY_COST
        if charge <= limit:
            return None
        since = self.backlog_since
        full_for = _monotonic() - since if since else 0.0
        if charge > limit * SEND_QUEUE_CEILING or (since and full_for >= grace):
            return charge, full_for
        return None

    def check_limit(self) -> None:
        """Tell the owner if the queue is past its limit and grace (the flusher calls it). Never blocks."""
        with self._lock:
            over = self._over_limit_locked(SEND_QUEUE_GRACE)
        if over is not None and self._overflow is not None:
            self._overflow(*over)

    # -- writing

    def _write_locked(self, done: list[tuple[Waiter, int]]) -> bool:
        """Write without blocking; True when the flusher must take over. Requires the lock."""
        assert self._lock.locked()
        if self.state is not QueueState.OPEN and self.state is not QueueState.SEALED:
            return False  # held, the flusher's already, or broken
        if self._write_some(done):
            return False
        self._move("watch")
        return True

    def _after_write(self, watch: bool, done: list[tuple[Waiter, int]], over: tuple[int, float] | None) -> None:
        if watch:
            self._flusher.watch(self)
        client_id = self.client_id
        for waiter, nbytes in done:
            waiter.message_written(client_id, nbytes)
        if self._orphans:
            self._fail_orphans()
        if over is not None and self._overflow is not None:
            self._overflow(*over)

    def _fail_orphans(self) -> None:
        with self._lock:
            orphans, self._orphans = self._orphans, []
        for waiter in orphans:
            error = ClientClosed("the connection broke before the message was written")
            waiter.message_failed(self.client_id, error)

    def _write_some(self, done: list[tuple[Waiter, int]]) -> bool:
        """Write queued frames until done (True) or the socket is full (False).

        Requires the lock. Waiters of written messages go to ``done``.
        """
        assert self._lock.locked()
        if self.state is QueueState.BROKEN:
            return True
        send = self._send
        written = 0
        frames = 0
        data_written = False
        result = True
        while True:
            partial = self._partial
            if partial is not None:
                entry, offset = partial
                self._partial = None
            elif self._pong is not None:
                entry, self._pong = self._pong, None
                offset = 0
            elif self._control:
                entry = self._control.popleft()
                offset = 0
            elif self._data:
                entry = self._data.popleft()
                offset = 0
            else:
                break
            frame = entry[0]
            try:
                if isinstance(frame, bytes):
                    length = len(frame)
                    sent = send(memoryview(frame)[offset:] if offset else frame)
                    opcode = frame[0] & 0x0F
                else:
                    head, body = frame
                    length = len(head) + len(body)
                    if offset < len(head):
                        sent = self._send_parts(memoryview(head)[offset:] if offset else head, body)
                    else:
                        sent = send(memoryview(body)[offset - len(head) :])
                    opcode = head[0] & 0x0F
            except OSError:
                # The peer is gone: the reading thread sees it too and closes with 1006.
                self._partial = (entry, offset)
                self._break_locked()
                if self._drained is not None:
                    self._drained.set()
                break
            written += sent
            offset += sent
            if offset < length:
                self._partial = (entry, offset)
                result = False
                break
            frames += 1
            if opcode < 0x8:
                data_written = True
            waiter = entry[1]
            if waiter is not None:
                done.append((waiter, entry[2]))
        if result:
            self.backlog_since = 0.0
        elif written or not self.backlog_since:
            # Full again now: a client that takes bytes is keeping up, however much is queued.
            self.backlog_since = _monotonic()
        if written:
            now = _wall_time()
            self.queued_bytes -= written
            self._entries -= frames
            self.bytes_sent += written
            self.frames_sent += frames
            self.last_sent_at = now
            if data_written:
                self.last_data_sent_at = now
        if result and self._drained is not None:
            self._drained.set()
        return result

    def _break_locked(self) -> None:
        """The socket failed: nothing more will be written. Requires the lock."""
        self._move("break")
        self._orphans.extend(self._drop_locked())
        self._orphans.extend(self._drop_partial_locked())
        self.transport.shutdown()

    def _drop_locked(self) -> list[Waiter]:
        """Drop every frame not yet started; return the waiters of their messages. Requires the lock."""
        assert self._lock.locked()
        data = self._data or ()
        dropped = [entry[1] for entry in data if entry[1] is not None]
        partial = self._partial
        self.queued_bytes = frame_length(partial[0][0]) - partial[1] if partial is not None else 0
        self._entries = 0 if partial is None else 1
        if self._data is not None:
            self._data.clear()
        if self._control is not None:
            self._control.clear()
        self._pong = None
        return dropped

    def _drop_partial_locked(self) -> list[Waiter]:
        assert self._lock.locked()
        partial, self._partial = self._partial, None
        self.queued_bytes = 0
        self._entries = 0
        if partial is not None and partial[0][1] is not None:
            return [partial[0][1]]
        return []

    # -- the flusher's side

    def flush_writable(self) -> bool:
        """Write what the now writable socket takes; True when the queue is empty (or broken).

        Called by the :class:`Flusher`'s thread; never blocks.
        """
        done: list[tuple[Waiter, int]] = []
        with self._lock:
            finished = self._write_some(done)
            if finished:
                self._move("drained")
        client_id = self.client_id
        for waiter, nbytes in done:
            waiter.message_written(client_id, nbytes)
        if self._orphans:
            self._fail_orphans()
        return finished

    # -- the end of the connection

    def wait_drained(self, timeout: float) -> bool:
        """Block until everything queued is written (or the socket broke), at most ``timeout`` seconds."""
        with self._lock:
            if self.state is QueueState.BROKEN or not self._entries:
                return True
            if self._drained is None:
                self._drained = threading.Event()
            event = self._drained
        return event.wait(timeout)

    def shutdown(self) -> list[Waiter]:
        """Stop writing for good; returns the waiters of messages never written.

        Call once, before the socket is closed. Thread-safe; blocks until the
        flusher's thread has let go of the socket (at most 5 s) if it ever watched it.
        """
        with self._lock:
            self._move("break")
            dropped = self._drop_locked()
            dropped.extend(self._drop_partial_locked())
        # The flusher must forget the descriptor before it can be reused (at once if it never had it).
        self._flusher.forget(self)
        return dropped


class Flusher:
    """One thread writing the leftovers of every client whose socket was full.

    It also calls :meth:`SendQueue.check_limit` on the queues it watches every
    :data:`CHECK_INTERVAL`, so that a queue over its limit is reported once
    its grace is over even if nothing more is sent to it.

    Every method is thread-safe; :meth:`watch` never blocks, :meth:`forget` does.
    """

    def __init__(self, name: str = "syncaerys-flusher") -> None:
        self._name = name
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # Guards the requests below, which only the flusher thread applies to
        # the selector (selectors are not thread-safe).
        self._lock = threading.Lock()
        self._to_watch: list[SendQueue] = []
        self._to_forget: list[tuple[SendQueue, threading.Event]] = []
        # The queues whose socket the flusher has or may soon have registered: the others need no forget().
        self._known: set[SendQueue] = set()
        self._signalled = False
        self._worker: threading.Thread | None = None

    def watch(self, queue: SendQueue) -> None:
        """Write ``queue`` out whenever its socket is writable, until it is empty.

        Thread-safe; never blocks (the first call starts the flusher's thread).
        """
        with self._lock:
            self._to_watch.append(queue)
            self._known.add(queue)
            self._wake_locked()

    def forget(self, queue: SendQueue, timeout: float = 5.0) -> None:
        """Stop watching ``queue``'s socket; returns once the flusher has let go.

        Thread-safe; returns at once if the flusher never had it, else blocks
        until the flusher's thread has applied it (at most ``timeout``
        seconds), except when called on that thread.
        """
        done = threading.Event()
        with self._lock:
            if queue not in self._known:
                return
            self._to_forget.append((queue, done))
            self._wake_locked()
        if threading.current_thread() is not self._worker:
            done.wait(timeout)

    def start(self) -> None:
        """Start the flusher's thread now if it is not running (else the first :meth:`watch` does).

        For a gateway's start: a stop at the interpreter's exit, when a client's socket is
        full, must not be the first to start a thread, which Python 3.12 refuses during
        shutdown. Thread-safe; never blocks.
        """
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._worker is None:
            self._selector.register(self._wake_r, selectors.EVENT_READ, None)
            # A daemon: what it holds belongs to clients that end with the process.
            self._worker = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._worker.start()

    def _wake_locked(self) -> None:
        self._start_locked()
        if not self._signalled:
            self._signalled = True
            try:
                self._wake_w.send(b"\0")
            except BlockingIOError:
                pass

    def _run(self) -> None:
        selector = self._selector
        watched: dict[int, SendQueue] = {}
        next_check = _monotonic() + CHECK_INTERVAL
        while True:
            timeout = max(0.0, next_check - _monotonic()) if watched else None
            for key, _ in selector.select(timeout):
                queue: SendQueue | None = key.data
                if queue is None:
                    try:
                        self._wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    continue
                try:
                    finished = queue.flush_writable()
                except Exception:
                    logger.exception("flusher failed to write to client %d", queue.client_id)
                    finished = True
                if finished and watched.get(queue.fileno) is queue:
                    selector.unregister(queue.fileno)
                    del watched[queue.fileno]
                    self._let_go(queue)
            if watched and _monotonic() >= next_check:
                next_check = _monotonic() + CHECK_INTERVAL
                for queue in list(watched.values()):
                    try:
                        queue.check_limit()
                    except Exception:
                        logger.exception("checking the send queue of client %d failed", queue.client_id)
            with self._lock:
                to_watch, self._to_watch = self._to_watch, []
                to_forget, self._to_forget = self._to_forget, []
                self._signalled = False
            for queue, done in to_forget:
                if watched.get(queue.fileno) is queue:
                    selector.unregister(queue.fileno)
                    del watched[queue.fileno]
                self._let_go(queue)
                done.set()
            for queue in to_watch:
                if queue.fileno in watched:
                    continue
                if queue.broken:
                    self._let_go(queue)
                    continue
                selector.register(queue.fileno, selectors.EVENT_WRITE, queue)
                watched[queue.fileno] = queue

    def _let_go(self, queue: SendQueue) -> None:
        """The selector no longer has ``queue``'s socket: forget() need not wait, unless it is asked for again."""
        with self._lock:
            if queue not in self._to_watch:
                self._known.discard(queue)


_shared: Flusher | None = None
_shared_lock = threading.Lock()


def shared_flusher() -> Flusher:
    """The process-wide flusher (its thread starts with the first full socket). Thread-safe; never blocks."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Flusher()
    return _shared
