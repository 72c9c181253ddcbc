"""A flag a signal handler may raise: the lock-free replacement for ``threading.Event`` there.

A Python signal handler runs in the main thread between two bytecodes of whatever
that thread was doing, and again inside itself when a second signal comes
(gunicorn's worker gets SIGTERM twice on a stop: the process group's, and the
master's). ``threading.Event.set`` takes the event's lock, so a handler that
calls it deadlocks when the main thread already holds that lock: inside the
first handler's ``set``, or in its own ``Event.wait``. :class:`SignalFlag` takes
no lock: raising it writes one byte to a pipe, waiting for it is a ``select`` on
the pipe, and the byte is never read, so the flag stays raised.
"""

from __future__ import annotations

import os
import select

__all__ = ["SignalFlag"]


class SignalFlag:
    """Raised once (from a signal handler or any thread), waited for by any number of threads.

    Every method is thread-safe and safe in a signal handler, re-entrant calls included.
    """

    def __init__(self) -> None:
        self._read_end, self._write_end = os.pipe()
        os.set_blocking(self._read_end, False)
        os.set_blocking(self._write_end, False)
        self._raised = False

    def raise_flag(self) -> None:
        """Raise the flag and wake its waiters. Never blocks; raising it again does nothing."""
        if self._raised:
            return
        self._raised = True
        try:
            os.write(self._write_end, b"!")
        except OSError:  # closed, or full of an earlier byte: the waiters are woken either way
            pass

    def is_raised(self) -> bool:
        """Whether :meth:`raise_flag` was called. Never blocks."""
        return self._raised

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is raised, at most ``timeout`` seconds; return whether it is."""
        if self._raised:
            return True
        try:
            select.select([self._read_end], [], [], timeout)
        except (OSError, ValueError):  # closed meanwhile
            pass
        return self._raised

    def close(self) -> None:
        """Release the pipe; the flag counts as raised from now on. Never blocks."""
        self._raised = True
        for fd in (self._read_end, self._write_end):
            try:
                os.close(fd)
            except OSError:
                pass
