"""Admission: how many connections are served at once, and the warning about the ones refused.

:class:`Admission` counts the connections a server holds against its
``max_connections`` and writes the refusals to the ``syncaerys.http`` log, at
most every ten seconds with a count, naming the option to change.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

__all__ = ["Admission", "default_max_connections", "open_file_limit"]

http_logger = logging.getLogger("syncaerys.http")

#: Descriptors kept for everything that is not a connection (logs, Redis, the flusher, the app's own).
_MIN_FD_RESERVE = 32


def open_file_limit() -> int | None:
    """The process's open-file soft limit (``ulimit -n``), or ``None`` where there is none or it cannot be read.

    Thread-safe; never blocks.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def default_max_connections() -> int:
    """The default ``max_connections``: the open-file soft limit less a reserve.

    Each connection holds one descriptor; the reserve (a tenth of the limit,
    at least 32) is for the rest of the process. With the usual soft limit
    of 1,024 that is 922: raise the limit (``ulimit -n``, systemd's
    ``LimitNOFILE``) to serve more. Where the limit cannot be read, 1,000.

    Thread-safe; never blocks.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 1000
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1_000_000
    return max(1, soft - max(_MIN_FD_RESERVE, soft // 10))


class Admission:
    """The connections served at once, against a limit; thread-safe, never blocks.

    :param max_connections: a positive int, ``"auto"`` (see
        :func:`default_max_connections`) or ``None`` (no limit);
        :class:`ValueError` for anything else.
    """

    def __init__(self, max_connections: int | Literal["auto"] | None, interval: float = 10.0) -> None:
        limit = default_max_connections() if max_connections == "auto" else max_connections
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"max_connections must be a positive int, 'auto' or None, not {max_connections!r}")
        #: The limit (``"auto"`` resolved), or ``None``.
        self.limit: int | None = limit
        #: Whether the limit came from the open-file limit (``"auto"``).
        self.auto = max_connections == "auto"
        # Guards _count, and the refusal log's three fields.
        self._lock = threading.Lock()
        self._count = 0
        self._interval = interval
        self._last_warning = -interval
        self._refused = 0

    @property
    def count(self) -> int:
        """The connections admitted and not released yet."""
        return self._count

    def describe(self) -> str:
        """The limit as the log says it: ``max_connections=N``, and for ``"auto"`` where N came from."""
        if not self.auto:
            return f"max_connections={self.limit}"
        return (
            f"max_connections='auto' ({self.limit} connections: the open-file soft limit {open_file_limit()} "
            "less a reserve)"
        )

    def report(self) -> None:
        """Log the limit once, as the server starts: at INFO, naming what to raise when it came from "auto"."""
        if self.auto:
            http_logger.info(
                "%s; to serve more clients at once, raise the open-file limit (ulimit -n, systemd's LimitNOFILE=) "
                "or pass max_connections=",
                self.describe(),
            )

    def admit(self) -> bool:
        """Count one more connection, unless the limit is reached (then ``False``, nothing counted)."""
        with self._lock:
            if self.limit is not None and self._count >= self.limit:
                return False
            self._count += 1
            return True

    def release(self) -> None:
        """One admitted connection is over."""
        with self._lock:
            self._count -= 1

    def refused(self, cause: str, detail: str) -> None:
        """Log a refused connection: ``cause`` is ``"max_connections"`` or what the accept failed with.

        At most one warning every ``interval`` seconds, counting the refusals since the last one.
        """
        with self._lock:
            self._refused += 1
            now = time.monotonic()
            if now - self._last_warning < self._interval:
                return
            count, self._refused, self._last_warning = self._refused, 0, now
        if cause == "max_connections":
            hint = (
                "raise the open-file limit (ulimit -n, systemd's LimitNOFILE=) or pass max_connections="
                if self.auto
                else "raise max_connections= (and the open-file limit, ulimit -n)"
            )
            http_logger.warning(
                "%s reached: %d connection(s) refused with 503 (the last from %s); if the load is legitimate, %s",
                self.describe(),
                count,
                detail,
                hint,
            )
        else:
            http_logger.warning(
                "cannot accept connections: %s (%s), %d time(s); raise the open-file limit (ulimit -n) or lower "
                "max_connections (now %s)",
                cause,
                detail,
                count,
                self.limit,
            )
