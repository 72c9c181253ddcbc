"""Under gevent: which client's callback kept gevent's event loop (its hub) from running.

With gevent every client is a greenlet of one OS thread, and a call that
gevent cannot make cooperative (C code that waits: a database driver gevent
does not patch, a lock, hashing, image work) stops every other client until it
returns. gevent's own monitor thread notices a hub that has not run for
``gevent.config.max_blocking_time`` (0.1 s by default) and says which greenlet
was running; this module maps that greenlet to the client whose callback it
was in, so that the connection can log one WARNING naming the callback and
how long the hub was blocked, once the call returns.

:func:`hub_watch` turns gevent's monitor on (without its own stderr report,
which this replaces) unless the environment sets
``GEVENT_MONITOR_THREAD_ENABLE``: then gevent's configuration is the
user's, as it was.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from typing import Protocol

__all__ = ["HubWatch", "Watched", "hub_watch"]


class Watched(Protocol):
    """What the watch tells a client: its callback blocked the hub (called from gevent's monitor thread)."""

    def hub_blocked(self, threshold: float) -> None:
        """Record that the hub had not run for ``threshold`` seconds while this client's greenlet ran."""


class HubWatch:
    """The greenlets of the clients being served, and gevent's monitor events mapped onto them.

    :meth:`serving` and :meth:`done` are called by each client's greenlet;
    :meth:`loop_iteration` too. The event handler runs on gevent's monitor
    thread (a real OS thread) and only sets attributes: it takes no lock a
    greenlet could hold (under gevent's monkey-patching, ``threading``'s locks
    are greenlet locks). Never blocks.
    """

    def __init__(self, gevent: Any) -> None:
        self._getcurrent = gevent.getcurrent
        self._hub = gevent.get_hub()
        # id(greenlet) -> the client it serves; plain dict operations (atomic under the GIL).
        self._clients: dict[int, Watched] = {}
        self.threshold: float = float(gevent.config.max_blocking_time)
        self.monitoring = False

    def start(self, gevent: Any) -> None:
        """Turn gevent's monitor thread on (unless configured from the environment) and listen to it."""
        from gevent import events

        events.subscribers.append(self._on_event)
        config = gevent.config
        if not config.monitor_thread and "GEVENT_MONITOR_THREAD_ENABLE" not in os.environ:
            config.monitor_thread = True
            # Its report is a dump of every greenlet's stack on stderr, each 0.1 s the hub stays blocked:
            # the WARNING of the client's callback says the same in a line.
            config.print_blocking_reports = False
        self.monitoring = bool(config.monitor_thread)
        if self.monitoring:
            self._hub.start_periodic_monitoring_thread()

    def serving(self, client: Watched) -> None:
        """The calling greenlet serves ``client`` from now on. Its greenlet only."""
        self._clients[id(self._getcurrent())] = client

    def done(self) -> None:
        """The calling greenlet has finished serving its client. Its greenlet only."""
        self._clients.pop(id(self._getcurrent()), None)

    def loop_iteration(self) -> int:
        """How many times the hub's loop has run (it stays the same while the hub is blocked); -1 if unknown."""
        iteration = getattr(self._hub.loop, "iteration", -1)
        return iteration if isinstance(iteration, int) else -1

    def _on_event(self, event: object) -> None:
        greenlet = getattr(event, "greenlet", None)
        blocking_time = getattr(event, "blocking_time", None)
        if greenlet is None or blocking_time is None or getattr(event, "hub", self._hub) is not self._hub:
            return
        client = self._clients.get(id(greenlet))
        if client is not None:
            client.hub_blocked(float(blocking_time))


_watch: HubWatch | None = None
_watch_made = threading.Lock()


def hub_watch() -> HubWatch:
    """The process's watch, started by the first call (the first client served on gevent). Never blocks long."""
    global _watch
    if _watch is None:
        import gevent

        with _watch_made:
            if _watch is None:
                watch = HubWatch(gevent)
                watch.start(gevent)
                _watch = watch
    return _watch
