"""The threaded server: werkzeug's threaded WSGI server with the Aerys lifecycle.

States: STOPPED -> STARTING (every gateway's ``on_start``) -> STARTED ->
STOPPING (listener closed, new handshakes get 503, ``on_stop``, clients
closed with 1001, closing handshakes awaited) -> STOPPED.

Threads: one per connection (werkzeug's ``ThreadingMixIn``; the thread that
handled an upgrade serves that client until it is gone), plus the thread that
runs :meth:`Server.serve_forever`, the shared timer and the shared flusher.
"""

from __future__ import annotations

import logging
import signal
import threading
import types
from typing import Any

from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

from .gateway import STARTED
from .gateway import STARTING
from .gateway import STOPPED
from .gateway import STOPPING
from .gateway import Gateway

__all__ = ["Server", "run"]

logger = logging.getLogger("syncaerys")
http_logger = logging.getLogger("syncaerys.http")


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, telling gateways which server they run on."""

    def make_environ(self) -> Any:
        environ = super().make_environ()
        environ["syncaerys.server"] = getattr(self.server, "syncaerys_server", None)
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        http_logger.debug('%s "%s" %s %s', self.address_string(), self.requestline, code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        http_logger.log(logging.ERROR if type == "error" else logging.INFO, message, *args)


class Server:
    """Serves a WSGI application (a gateway, or an app that mounts gateways).

    ``port=0`` picks a free port; read it back from :attr:`port`. Use it as a
    context manager to serve from a background thread (tests do), or call
    :func:`run` to serve from the main thread until SIGINT/SIGTERM.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 1337) -> None:
        self.app = app
        self._wsgi: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_RequestHandler)
        self._wsgi.syncaerys_server = self  # type: ignore[attr-defined]
        self.state = STOPPED
        # Guards the state and the list of gateways.
        self._lock = threading.Lock()
        self.gateways: list[Gateway] = [app] if isinstance(app, Gateway) else []
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._wsgi.server_address[0])

    @property
    def port(self) -> int:
        return self._wsgi.server_port

    def _attach(self, gateway: Gateway) -> None:
        """Called by a gateway at each request: adopt it and start it."""
        if gateway in self.gateways:
            return
        with self._lock:
            if gateway not in self.gateways:
                self.gateways.append(gateway)
            started = self.state == STARTED
        if started:
            gateway.start()

    def start(self) -> None:
        """STARTING: call every known gateway's ``on_start``; errors propagate."""
        with self._lock:
            if self.state != STOPPED:
                raise RuntimeError(f"server is {self.state}")
            self.state = STARTING
            gateways = list(self.gateways)
        try:
            for gateway in gateways:
                gateway.start()
        except BaseException:
            self._wsgi.server_close()
            self.state = STOPPED
            raise
        self.state = STARTED
        logger.info("listening on http://%s:%d", self.host, self.port)

    def serve_forever(self) -> None:
        """Accept connections until :meth:`stop` (or a KeyboardInterrupt)."""
        self._wsgi.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """STOPPING: close the listener, stop every gateway, then STOPPED."""
        with self._lock:
            if self.state in (STOPPING, STOPPED):
                return
            self.state = STOPPING
            gateways = list(self.gateways)
        logger.info("stopping")
        if self._thread is not None:
            self._wsgi.shutdown()
            self._thread.join()
        self._wsgi.server_close()
        for gateway in gateways:
            gateway.stop()
        self.state = STOPPED
        logger.info("stopped")

    def __enter__(self) -> Server:
        self.start()
        self._thread = threading.Thread(target=self.serve_forever, name="syncaerys-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Stop(BaseException):
    """Raised in the main thread by the SIGTERM handler."""


def _raise_stop(signum: int, frame: types.FrameType | None) -> None:
    raise _Stop()


def _raise_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt()


def run(app: Any, host: str = "127.0.0.1", port: int = 1337) -> None:
    """Serve ``app`` on ``host:port`` until SIGINT or SIGTERM, then stop gracefully.

    ``app`` is a gateway from :func:`~syncaerys.websocket` or any WSGI
    application that mounts gateways. A second Ctrl-C (or SIGTERM) during the
    graceful stop stops at once. Configures logging if nothing else did.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = Server(app, host, port)
    server.start()
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        # Installed explicitly: a process started in the background of a
        # non-interactive shell inherits SIGINT ignored.
        signal.signal(signal.SIGINT, _raise_interrupt)
        signal.signal(signal.SIGTERM, _raise_stop)
    try:
        server.serve_forever()  # werkzeug's loop returns on KeyboardInterrupt
    except _Stop:
        pass
    if in_main:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.stop()
    except KeyboardInterrupt:
        logger.warning("interrupted again: stopping at once")
