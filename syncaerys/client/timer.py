"""One shared timer thread for heartbeats and close deadlines.

Every client schedules its deadlines here instead of owning a thread, so a
server with N clients keeps N + a small constant threads. Callbacks run on the
timer thread and must be quick and non-blocking.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Timer", "TimerHandle", "shared_timer"]

logger = logging.getLogger("syncaerys.connection")


class TimerHandle:
    """A scheduled call; :meth:`cancel` stops it from running. Thread-safe; never blocks."""

    __slots__ = ("callback", "when")

    def __init__(self, when: float, callback: Callable[[], object] | None) -> None:
        self.when = when
        self.callback = callback

    def cancel(self) -> None:
        """Keep the call from running; a call the timer thread has already taken still runs. Never blocks."""
        self.callback = None


class Timer:
    """Runs callbacks at ``time.monotonic()`` deadlines on one daemon thread.

    :meth:`call_later` is thread-safe and never blocks. The callbacks run one
    at a time on the timer's thread, so they must be quick and must not block.
    """

    def __init__(self, name: str = "syncaerys-timer") -> None:
        self._name = name
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._counter = itertools.count()
        # Serializes the heap and wakes the thread when an earlier deadline arrives.
        self._condition = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the timer's thread now instead of at the first deadline (nothing if it runs).

        A gateway starts it: a stop at the interpreter's exit then needs no new thread,
        which Python 3.12 refuses during shutdown. Thread-safe; never blocks.
        """
        with self._condition:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None:
            # A daemon: it holds no state that must outlive the process.
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback()`` on the timer thread in ``delay`` seconds. Thread-safe; never blocks."""
        handle = TimerHandle(time.monotonic() + delay, callback)
        with self._condition:
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (handle.when, next(self._counter), handle))
            if self._thread is None:
                self._start_locked()
            elif earliest is None or handle.when < earliest:
                self._condition.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        handle = heapq.heappop(self._heap)[2]
                        break
                    self._condition.wait(self._heap[0][0] - now if self._heap else None)
            callback = handle.callback
            if callback is None:
                continue
            handle.callback = None
            try:
                callback()
            except Exception:
                logger.exception("exception in a timer callback")


_shared: Timer | None = None
_shared_lock = threading.Lock()


def shared_timer() -> Timer:
    """The process-wide timer (its thread starts with the first deadline). Thread-safe; never blocks."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Timer()
    return _shared
