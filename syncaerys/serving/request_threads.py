"""The threads that serve HTTP requests, kept for the next request rather than started for each.

socketserver starts a thread per connection and ends it with the
request. Under syncaerys's server an upgrade request hands its client to a
thread of its own (:mod:`.handoff`), so a request thread would be started and
ended for every client: with 10,000 threads in the process that pair costs
about 230 µs of CPU (88 µs with none), a third of a handshake. Here a thread
whose request is over waits for the next one, and ends after
:data:`IDLE_TIMEOUT` without one.

No request ever waits for a thread: a request that finds none idle gets a new
one, so a slow client holds only its own. Each request runs in a fresh
:class:`contextvars.Context`, as it would on a thread of its own.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["IDLE_TIMEOUT", "RequestThreads"]

#: How long a thread waits for a next request before it ends, in seconds.
IDLE_TIMEOUT = 5.0


class RequestThreads:
    """Threads for requests: as many as there are requests at once, reused, ended when idle.

    Thread-safe; :meth:`submit` never blocks (it may start a thread), :meth:`close` never blocks.
    """

    def __init__(self, name: str, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._name = name
        self._idle_timeout = idle_timeout
        self._cond = threading.Condition(threading.Lock())
        self._work: deque[Callable[[], None]] = deque()
        self._waiting = 0
        self._closed = False

    def submit(self, request: Callable[[], None]) -> None:
        """Run ``request`` on an idle thread, or a new one.

        Raises :class:`RuntimeError` (and ``request`` will not run) when no idle
        thread is there and no thread can be started, or after :meth:`close`.
        """
        with self._cond:
            if self._closed:
                raise RuntimeError("the server's request threads are closed")
            self._work.append(request)
            if len(self._work) <= self._waiting:
                self._cond.notify()
                return
            thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            try:
                thread.start()
            except RuntimeError:
                self._work.remove(request)
                raise

    def idle_count(self) -> int:
        """Threads waiting for a request now. Thread-safe; never blocks (but for the lock)."""
        with self._cond:
            return self._waiting

    def close(self) -> None:
        """Idle threads end now, busy ones once their request is over; no more requests are taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._work:
                    if self._closed:
                        return
                    self._waiting += 1
                    try:
                        woken = self._cond.wait(self._idle_timeout)
                    finally:
                        self._waiting -= 1
                    if not woken and not self._work:
                        return
                request = self._work.popleft()
            contextvars.Context().run(request)
            del request  # what it holds goes before the wait for the next
