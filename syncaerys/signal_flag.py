"""A flag a signal handler may raise: the lock-free replacement for ``threading.Event`` there.

A Python signal handler runs in the main thread between two bytecodes of whatever
that thread was doing, and again inside itself when a second signal comes
(gunicorn's worker gets SIGTERM twice on a stop: the process group's, and the
master's). ``threading.Event.set`` takes the event's lock, so a handler that
calls it deadlocks when the main thread already holds that lock: inside the
first handler's ``set``, or in its own ``Event.wait``. :class:`SignalFlag` takes
no lock: raising it writes one byte to a socket pair, waiting for it is a
``select`` on the other end, and the byte is never read, so the flag stays
raised. (A socket pair rather than a pipe: ``select`` takes sockets everywhere,
pipes not on Windows.)
"""

from __future__ import annotations

import select
import socket

__all__ = ["SignalFlag"]


class SignalFlag:
    """Raised once (from a signal handler or any thread), waited for by any number of threads.

    Every method is thread-safe and safe in a signal handler, re-entrant calls included.
    """

    def __init__(self) -> None:
        self._read_end, self._write_end = socket.socketpair()
        self._read_end.setblocking(False)
        self._write_end.setblocking(False)
        self._raised = False

    def raise_flag(self) -> None:
        """Raise the flag and wake its waiters. Never blocks; raising it again does nothing."""
        if self._raised:
            return
        self._raised = True
        try:
            self._write_end.send(b"!")
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
        """Release the sockets; the flag counts as raised from now on (nothing will raise it). Never blocks."""
        self._raised = True
        self._read_end.close()
        self._write_end.close()
