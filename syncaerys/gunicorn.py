"""Serve syncaerys gateways under gunicorn's ``gthread`` worker (or its ``gevent`` worker).

Put the hooks in your gunicorn config file (``examples/gunicorn.conf.py`` is
a complete one)::

    # gunicorn.conf.py
    from syncaerys.gunicorn import post_worker_init  # noqa: F401
    from syncaerys.gunicorn import worker_exit  # noqa: F401
    from syncaerys.gunicorn import worker_int  # noqa: F401

    worker_class = "gthread"
    threads = 100          # >= websockets expected per worker + headroom for plain HTTP
    graceful_timeout = 10  # > close_period: time for the closing handshakes

and run ``gunicorn -c gunicorn.conf.py module:app``.

**Threads.** Each open websocket holds one of the worker's ``--threads`` for
its whole life (syncaerys serves it in the request's thread and adds no thread
of its own per client). When every thread holds a websocket, new requests,
plain HTTP included, wait in gunicorn's queue until a websocket closes. Set
``--threads`` to the websockets you expect per worker plus headroom for
ordinary requests; the hooks log a warning when websockets leave fewer than
a tenth of the threads free. Several workers (``-w``) are fine, but each has
its own clients: broadcasts reach one worker's clients only unless a
cluster backplane is configured.

**gevent.** With ``-k gevent`` gunicorn monkey-patches the worker and each
websocket is a greenlet: ``--threads`` plays no part (``worker_connections``
caps the connections) and the same hooks stop the gateways on SIGTERM.

**Stopping.** On SIGTERM gunicorn's worker stops accepting, then waits up to
``--graceful-timeout`` (30 s by default) for its connections to end, and a
websocket never ends by itself; gunicorn's own ``worker_exit`` hook only runs
after that wait, when the master is about to SIGKILL the worker. So
:func:`post_worker_init` also hooks SIGTERM: at once, every gateway in the
worker runs ``on_stop`` and closes its clients with 1001 "Server shutting
down", waiting up to ``close_period`` for the closing handshakes, and the
worker exits as soon as they are done. Keep ``--graceful-timeout`` above
``close_period`` plus a second. :func:`worker_int` does the same on SIGINT and
SIGQUIT (quick shutdown, waiting at most :data:`QUICK_STOP_TIMEOUT`). When
the worker stops for another reason (``--max-requests``, where each
websocket counts as a request; ``--reload``) the hooks notice within a second
and do the same, and :func:`worker_exit` covers the rest (the master dying).

**Logging.** Unless logging is configured otherwise, :func:`post_worker_init`
sends the ``syncaerys`` log (a line per connection opened and closed, handler
tracebacks) to gunicorn's error log at gunicorn's ``--log-level``.

If your config defines one of these hooks itself, call ours from it.

**Workers.** Only ``gthread`` serves websockets well. The ``sync`` worker
runs one request at a time, so one websocket blocks the worker, and its
``--timeout`` kills the worker with every client: the gateway refuses every
upgrade under it with a 500 and an error naming gthread (hooks or not), and
:func:`post_worker_init` logs an error for it at boot (and a warning for the
other, untested, workers).

**--preload.** The application is imported in the master, which forks the
workers: a gateway started there (``sockets.start()`` at import) and the
threads started with it, a pusher among them, stay in the master, whose
gateway has no clients, so what they push reaches nobody. :func:`post_worker_init`
warns about such a gateway; start gateways and pushers in the worker (at the
first request, or from ``on_start``).
gunicorn puts the client's socket in the environ as ``gunicorn.socket``, so
a gateway can upgrade under any of its WSGI workers; the ASGI worker
(``-k asgi``) does not run WSGI applications.

The gateways are found without any registration: those passed to
:func:`track`, and every other :class:`~syncaerys.Gateway` alive in the
worker process.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import types
import weakref
from typing import Any
from typing import TypeVar

from .gateway import STARTED
from .gateway import STOPPED
from .gateway import Gateway
from .gateway import live_gateways
from .signal_flag import SignalFlag

__all__ = [
    "QUICK_STOP_TIMEOUT",
    "check_preload",
    "check_worker",
    "gateways",
    "post_worker_init",
    "share_gunicorn_log",
    "stop_all",
    "track",
    "worker_exit",
    "worker_int",
]

logger = logging.getLogger("syncaerys.gunicorn")

#: Seconds :func:`worker_int` waits for closing handshakes on SIGINT/SIGQUIT.
QUICK_STOP_TIMEOUT = 1.0
#: Seconds between two checks of the worker's state and thread use.
WATCH_INTERVAL = 1.0
#: Seconds between two searches of the process for gateways (see :func:`gateways`).
RESCAN_INTERVAL = 15.0

G = TypeVar("G", bound=Gateway)

_tracked: weakref.WeakSet[Gateway] = weakref.WeakSet()
_tracked_lock = threading.Lock()


def track(gateway: G) -> G:
    """Register ``gateway`` for the hooks; returns it (usable as ``gw = track(websocket(...))``).

    Optional: :func:`gateways` finds untracked gateways too (every gateway
    registers itself when it is made).

    Thread-safe; never blocks.
    """
    with _tracked_lock:
        _tracked.add(gateway)
    return gateway


def gateways() -> list[Gateway]:
    """Every gateway in this process: the tracked ones and any other still alive. Thread-safe; never blocks."""
    with _tracked_lock:
        found: dict[int, Gateway] = {id(g): g for g in _tracked}
    for candidate in live_gateways():
        found.setdefault(id(candidate), candidate)
    return list(found.values())


def stop_all(timeout: float | None = None) -> list[Gateway]:
    """Stop every gateway of this process; return those that were started.

    Each one runs ``on_stop`` and closes its clients with 1001; the whole
    takes at most ``timeout`` seconds (default: the longest ``close_period``
    plus one), the ``on_stop`` calls included. A gateway that has not started
    yet will not start any more (new handshakes get 503).

    Thread-safe; blocks until every gateway stopped, at most ``timeout``.
    """
    targets = gateways()
    started = [g for g in targets if g.state == STARTED]
    if started:
        logger.info("stopping %d syncaerys gateway(s) in pid %d", len(started), os.getpid())
    if timeout is None:
        timeout = max((g.options.close_period for g in started), default=0.0) + 1.0
    deadline = time.monotonic() + timeout
    for gateway in targets:
        try:
            gateway.stop(max(0.0, deadline - time.monotonic()))
        except Exception:
            logger.exception("error while stopping %r", gateway)
    return started


def _config(worker: Any, name: str, default: Any = None) -> Any:
    return getattr(getattr(worker, "cfg", None), name, default)


def check_worker(worker: Any) -> bool:
    """Whether ``worker`` is one syncaerys is tested under (gthread, gevent); log an error for the sync worker.

    Other workers get a warning: eventlet and gevent's pywsgi worker hand the
    socket over too, but are not tested.

    Thread-safe; never blocks.
    """
    if any(cls.__name__ == "ThreadWorker" for cls in type(worker).__mro__):
        threads = _config(worker, "threads", 1)
        if isinstance(threads, int) and threads < 2:
            logger.warning(
                "gunicorn --threads %d: one websocket will hold the worker's only thread; "
                "set --threads to the websockets expected per worker plus headroom",
                threads,
            )
        _check_worker_connections(worker, threads)
        return True
    name = type(worker).__name__
    if name == "GeventWorker":
        # gunicorn has monkey-patched the worker: client threads are greenlets (tests/test_gevent.py).
        return True
    if name == "SyncWorker":
        logger.error(
            "syncaerys websockets need gunicorn's gthread worker (-k gthread --threads N), not %s: "
            "under it a websocket would block the worker until --timeout kills it with its clients, so every "
            "upgrade is refused with 500",
            name,
        )
    else:
        logger.warning("syncaerys is made for gunicorn's gthread worker (-k gthread); %s is untested", name)
    return False


def check_preload(worker: Any) -> bool:
    """Warn, and return ``False``, when ``--preload`` is set and a gateway was started in the master.

    Call it in the worker before any gateway starts there (:func:`post_worker_init` does).
    Thread-safe; never blocks.
    """
    if not _config(worker, "preload_app", False):
        return True
    early = [g for g in gateways() if g.state != STOPPED]
    if not early:
        return True
    logger.warning(
        "%d syncaerys gateway(s) (%s) started in gunicorn's master, before it forked this worker "
        "(--preload and a start at import, such as sockets.start()): threads started with them, a pusher "
        "among them, run in the master, where no client is connected, so what they push reaches nobody. "
        "Start gateways and pushers in the worker: at the first request, or from on_start",
        len(early),
        ", ".join(sorted({type(g.handler).__name__ for g in early})),
    )
    return False


def _check_worker_connections(worker: Any, threads: Any) -> None:
    workers = _config(worker, "workers", 1)
    connections = _config(worker, "worker_connections", 1000)
    if not all(isinstance(n, int) for n in (workers, connections, threads)):
        return
    if workers > 1 and connections > threads:
        # gthread accepts up to worker_connections whatever its free threads; the listening
        # socket is shared, so the kernel may hand a full worker connections the others could serve.
        logger.warning(
            "gunicorn worker_connections %d > --threads %d with %d workers: a worker whose threads "
            "are all held by websockets goes on accepting connections, which then wait for one of "
            "its threads while other workers have free ones; set worker_connections = threads "
            "(and keepalive = 0)",
            connections,
            threads,
            workers,
        )


class _Watcher:
    """Stops the gateways when the worker is told to stop; warns when threads run short.

    The signal handlers only raise a :class:`SignalFlag`: the stop itself runs
    in this watcher's thread, started beforehand. A handler must take no lock
    (``threading.Event.set`` takes one): the worker gets SIGTERM twice on a
    stop (the process group's and the master's), and the second handler runs
    inside the first, in the main thread, which would wait for itself.
    """

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.pid = os.getpid()
        self.stop_requested = SignalFlag()
        self.stopped = SignalFlag()
        #: The bound of the stop (``None``: :func:`stop_all`'s default); :func:`worker_int` shortens it.
        self.stop_timeout: float | None = None
        # Only the gthread worker gives each websocket one of a fixed number of threads.
        self.threads: int | None = (
            _config(worker, "threads", 1) or 1
            if any(cls.__name__ == "ThreadWorker" for cls in type(worker).__mro__)
            else None
        )
        self._warned = False
        self._known: list[Gateway] = []
        self._scanned_at = -RESCAN_INTERVAL
        self.thread = threading.Thread(target=self._run, name="syncaerys-gunicorn", daemon=True)

    def install(self) -> None:
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: types.FrameType | None) -> None:
            self.stop_requested.raise_flag()
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
        # As gunicorn has it: SIGTERM must not interrupt system calls in progress.
        signal.siginterrupt(signal.SIGTERM, False)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_requested.wait(WATCH_INTERVAL):
            if not getattr(self.worker, "alive", True):
                break
            try:
                self._check_threads()
            except Exception:  # pragma: no cover - a warning must never kill the watcher
                logger.exception("error while counting websockets")
        try:
            stop_all(self.stop_timeout)
        finally:
            self.stopped.raise_flag()

    def stop_quickly(self, timeout: float) -> None:
        """Stop the gateways within ``timeout`` in the watcher's thread; wait for it, at most ``timeout``.

        Safe in a signal handler (it takes no lock), re-entrant calls included.
        """
        if not self.stop_requested.is_raised():
            self.stop_timeout = timeout
            self.stop_requested.raise_flag()
        self.stopped.wait(timeout)

    def _check_threads(self) -> None:
        if self.threads is None:
            return
        now = time.monotonic()
        if now - self._scanned_at >= RESCAN_INTERVAL:
            self._known = gateways()
            self._scanned_at = now
        busy = sum(g.connection_count() for g in self._known)  # closing clients hold their thread too
        free = self.threads - busy
        if free < max(1, self.threads // 10):
            if not self._warned:
                self._warned = True
                logger.warning(
                    "%d websockets hold %d of the worker's %d threads: new requests wait for a free thread; "
                    "raise gunicorn's --threads",
                    busy,
                    min(busy, self.threads),
                    self.threads,
                )
        elif free >= max(2, self.threads // 4):
            self._warned = False


_watcher: _Watcher | None = None


def share_gunicorn_log(worker: Any) -> None:
    """Send the ``syncaerys`` loggers' records to gunicorn's error log, at its level.

    Only when logging is not configured otherwise (no handler on the root
    logger nor on ``syncaerys``): without it, the connection lines and
    handler tracebacks would be lost.

    Call once, at the worker's start (it changes the ``syncaerys`` logger; not thread-safe); never blocks.
    """
    error_log = getattr(getattr(worker, "log", None), "error_log", None)
    ours = logging.getLogger("syncaerys")
    if not isinstance(error_log, logging.Logger) or ours.handlers or logging.getLogger().handlers:
        return
    for handler in error_log.handlers:
        ours.addHandler(handler)
    if ours.level == logging.NOTSET:
        ours.setLevel(error_log.level)


def post_worker_init(worker: Any) -> None:
    """gunicorn hook: check the worker class, start the gateways, stop them promptly on SIGTERM.

    Also sends syncaerys's log to gunicorn's error log (:func:`share_gunicorn_log`).

    gunicorn calls it once per worker, in the worker's main thread; it blocks while the ``on_start`` calls
    run.
    """
    global _watcher
    share_gunicorn_log(worker)
    check_worker(worker)
    check_preload(worker)
    start_all()
    watcher = _Watcher(worker)
    watcher.install()
    _watcher = watcher


def start_all() -> None:
    """Start the gateways the worker's application built (``on_start``, the backplane).

    Without this a gateway would start at its first request; started with the
    worker, a cluster member joins its backplane before its first client.
    Errors are logged: the gateway then tries again at its first request.

    Thread-safe; blocks while the ``on_start`` calls run.
    """
    for gateway in gateways():
        if gateway.state == STOPPED and not gateway.stopping:
            try:
                gateway.start()
            except Exception:
                logger.exception("could not start a syncaerys gateway in pid %d", os.getpid())


def worker_int(worker: Any) -> None:
    """gunicorn hook (SIGINT, SIGQUIT): stop every gateway, waiting at most :data:`QUICK_STOP_TIMEOUT`.

    gunicorn calls it from its signal handler, and a Ctrl-C gives the worker two signals (SIGINT
    from the terminal, SIGQUIT from the master), the second handler running inside the first: after
    :func:`post_worker_init`, the stop runs in the hooks' own thread and this only waits for it,
    so the second call cannot wait for a lock the first one holds.

    Thread-safe; blocks as :func:`stop_all`, at most :data:`QUICK_STOP_TIMEOUT`.
    """
    watcher = _watcher
    if watcher is not None and watcher.pid == os.getpid():
        watcher.stop_quickly(QUICK_STOP_TIMEOUT)
    else:
        stop_all(QUICK_STOP_TIMEOUT)


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn hook: stop every gateway still running when the worker exits.

    gunicorn also calls it in the master for a worker that vanished; it
    does nothing there.

    Thread-safe; blocks as :func:`stop_all`.
    """
    if getattr(worker, "pid", None) != os.getpid():
        return
    stop_all()
