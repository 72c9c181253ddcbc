"""Send futures: the results of :class:`~syncaerys.Endpoint` sends.

:class:`SendFuture` behaves like :class:`concurrent.futures.Future`
(``result(timeout)``, ``exception(timeout)``, ``done()``,
``add_done_callback``) but costs far less on the send path: most sends are
written at once, and a future that nobody waits on never allocates an event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Final
from typing import Generic
from typing import TypeVar

from .exceptions import BackplaneError

__all__ = ["SendFuture", "BroadcastResult"]

logger = logging.getLogger("syncaerys.endpoint")
T = TypeVar("T")

# Guards the state of every future. Critical sections are a few attribute
# assignments, so one process-wide lock costs less than one lock per future.
_state_lock: Final = threading.Lock()


class SendFuture(Generic[T]):
    """The outcome of a send: resolved once the frames are on the socket.

    Safe to use from any thread; only :meth:`result` and :meth:`exception`
    block (until the send is done). ``result()`` returns the number of bytes
    written for :meth:`Endpoint.send`, a :class:`BroadcastResult` for
    broadcasts and multicasts, and raises :class:`~syncaerys.ClientException`
    when the client was closing or went away first.
    """

    __slots__ = ("_callbacks", "_done", "_event", "_exception", "_result")

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None
        self._exception: BaseException | None = None
        self._event: threading.Event | None = None
        self._callbacks: list[Callable[[SendFuture[T]], object]] | None = None

    @classmethod
    def resolved(cls, value: T) -> SendFuture[T]:
        """A future that is already done with ``value``. Never blocks."""
        future: SendFuture[T] = cls()
        future._result = value
        future._done = True
        return future

    @classmethod
    def failed(cls, exception: BaseException) -> SendFuture[T]:
        """A future that is already done with ``exception``. Never blocks."""
        future: SendFuture[T] = cls()
        future._exception = exception
        future._done = True
        return future

    # -- the concurrent.futures.Future interface

    def done(self) -> bool:
        """Whether the future has a result or an exception. Thread-safe; never blocks."""
        return self._done

    def cancelled(self) -> bool:
        """Always ``False``: sends cannot be cancelled once queued."""
        return False

    def cancel(self) -> bool:
        """Always ``False``: sends cannot be cancelled once queued."""
        return False

    def running(self) -> bool:
        """Whether the send is still pending (the opposite of :meth:`done`). Thread-safe; never blocks."""
        return not self._done

    def result(self, timeout: float | None = None) -> T:
        """Block until done (at most ``timeout`` seconds) and return the result.

        Raises :class:`TimeoutError` when the time runs out and the send's
        exception when it failed.
        """
        if not self._done:
            self._wait(timeout)
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[no-any-return]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Block until done (at most ``timeout`` seconds) and return the exception, or ``None`` on success.

        Raises :class:`TimeoutError` when the time runs out. Thread-safe.
        """
        if not self._done:
            self._wait(timeout)
        return self._exception

    def add_done_callback(self, fn: Callable[[SendFuture[T]], object]) -> None:
        """Call ``fn(future)`` when done (at once, in this thread, if it already is).

        Otherwise ``fn`` runs in the thread that completes the send, so it must
        be quick and must not block. Thread-safe; never blocks by itself.
        """
        with _state_lock:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        self._run_callback(fn)

    # -- completion, for syncaerys's writers (and tests)

    def set_result(self, result: T) -> None:
        """Resolve with ``result``; nothing if already done. Thread-safe; never blocks.

        Waiters wake and done callbacks run in this thread.
        """
        self._set(result, None)

    def set_exception(self, exception: BaseException) -> None:
        """Fail with ``exception``; nothing if already done. Thread-safe; never blocks."""
        self._set(None, exception)

    def message_written(self, client_id: int, nbytes: int) -> None:
        """The send queue's :class:`~syncaerys.client.sendqueue.Waiter` call: resolve with ``nbytes``.

        Thread-safe; never blocks (as :meth:`set_result`).
        """
        self._set(nbytes, None)

    def message_failed(self, client_id: int, error: BaseException) -> None:
        """The send queue's :class:`~syncaerys.client.sendqueue.Waiter` call: fail with ``error``.

        Thread-safe; never blocks (as :meth:`set_exception`).
        """
        self._set(None, error)

    def _wait(self, timeout: float | None) -> None:
        with _state_lock:
            if self._done:
                return
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        if not event.wait(timeout):
            raise TimeoutError("the send has not completed yet")

    def _set(self, result: Any, exception: BaseException | None) -> None:
        with _state_lock:
            if self._done:
                return
            self._result = result
            self._exception = exception
            self._done = True
            event = self._event
            callbacks = self._callbacks
            self._callbacks = None
        if event is not None:
            event.set()
        if callbacks:
            for fn in callbacks:
                self._run_callback(fn)

    def _run_callback(self, fn: Callable[[SendFuture[T]], object]) -> None:
        try:
            fn(self)
        except Exception:
            logger.exception("exception in a send future's done callback")

    def __repr__(self) -> str:
        if not self._done:
            return "<SendFuture pending>"
        if self._exception is not None:
            return f"<SendFuture failed: {self._exception!r}>"
        return f"<SendFuture done: {self._result!r}>"


def resolve_unshared(future: SendFuture[T], value: T) -> None:
    """Resolve ``future`` with ``value`` without the futures' lock. Never blocks; not thread-safe.

    Only for a future that no other thread can reach yet: made by the caller
    and not yet returned or passed on, so nobody can be waiting on it or
    adding a callback (a send written at once, before ``Endpoint.send``
    returns its future). Anything else uses :meth:`SendFuture.set_result`.
    """
    future._result = value
    future._done = True


@dataclass(frozen=True)
class BroadcastResult:
    """What a broadcast or multicast achieved.

    ``delivered`` counts the clients of this process whose socket took the
    whole message; ``failed`` lists the ids that were closing or went away
    first. With a cluster backplane, ``remote_nodes`` counts the other
    processes the operation was published to (their deliveries are not
    counted: delivery to other processes is at most once).
    """

    delivered: int
    failed: tuple[int, ...] = ()
    remote_nodes: int = 0


class BroadcastTracker:
    """Collects per-client outcomes of one broadcast into one future.

    Every method is thread-safe (the counts are kept under its lock) and never
    blocks; the last outcome resolves the future in the thread that reports it.
    """

    __slots__ = ("_delivered", "_error", "_failed", "_lock", "_pending", "_remote_nodes", "future")

    def __init__(self, future: SendFuture[BroadcastResult], pending: int, publishes: int = 0) -> None:
        self.future = future
        self._pending = pending + publishes
        self._delivered = 0
        self._failed: list[int] = []
        self._remote_nodes = 0
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        if self._pending == 0:
            future.set_result(BroadcastResult(0, ()))

    def published(self, outcome: SendFuture[int]) -> None:
        """Count the outcome of publishing to other processes (a done callback: ``outcome`` is done)."""
        error = outcome.exception()
        with self._lock:
            if error is None:
                self._remote_nodes += outcome.result()
            elif self._error is None:
                self._error = error
            self._pending -= 1
            if self._pending:
                return
        self._resolve()

    def message_written(self, client_id: int, nbytes: int) -> None:
        """One client's copy is on its socket (a :class:`~syncaerys.client.sendqueue.Waiter` call)."""
        self.messages_written(1)

    def messages_written(self, count: int) -> None:
        """``count`` clients' copies are on their sockets: the fan-out's tally of those written at once."""
        with self._lock:
            self._delivered += count
            self._pending -= count
            if self._pending:
                return
        self._resolve()

    def message_failed(self, client_id: int, error: BaseException) -> None:
        """One client's copy will never be written (a :class:`~syncaerys.client.sendqueue.Waiter` call)."""
        self.skip(client_id)

    def skip(self, client_id: int) -> None:
        """Count a client that could not even be queued."""
        with self._lock:
            self._failed.append(client_id)
            self._pending -= 1
            if self._pending:
                return
        self._resolve()

    def _resolve(self) -> None:
        result = BroadcastResult(self._delivered, tuple(sorted(self._failed)), self._remote_nodes)
        if self._error is None:
            self.future.set_result(result)
            return
        error = BackplaneError(f"delivered locally, but not published to the other processes: {self._error}")
        error.local_result = result
        self.future.set_exception(error)
