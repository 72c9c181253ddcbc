"""The threaded server: werkzeug's threaded WSGI server with the Aerys lifecycle.

States: STOPPED -> STARTING (every gateway's ``on_start``) -> STARTED ->
STOPPING (listener closed, new handshakes get 503, ``on_stop``, clients
closed with 1001, closing handshakes awaited) -> STOPPED.

Threads: one per connection (werkzeug's ``ThreadingMixIn``; the thread that
handled an upgrade serves that client until it is gone), plus the thread that
runs :meth:`Server.serve_forever`, the shared timer and the shared flusher.

This module is the lifecycle. The hardening on top of werkzeug's server (the
connection cap, deadlines and limits of each request) is
:mod:`syncaerys.serving.http`'s; the connection count and the refusal warnings
:mod:`syncaerys.serving.admission`'s.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import TypedDict

from .gateway import STARTED
from .gateway import STARTING
from .gateway import STOPPED
from .gateway import STOPPING
from .gateway import Gateway
from .options import Options
from .protocol import mask
from .serving.admission import Admission
from .serving.admission import default_max_connections
from .serving.http import HardenedServer
from .serving.proxies import TrustedProxies

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["Server", "ServerOptions", "default_max_connections"]

logger = logging.getLogger("syncaerys.server")


class ServerOptions(TypedDict, total=False):
    """The keyword options of :class:`Server` that :func:`run` passes on, for type checkers."""

    ssl_context: ssl.SSLContext | None
    max_connections: int | Literal["auto"] | None
    header_timeout: float | None
    max_header_bytes: int | None
    trusted_proxies: Iterable[str] | None
    proxy_header: str


def check_server_arguments(host: Any, port: Any, options: Mapping[str, Any], caller: str = "Server()") -> None:
    """Raise :class:`TypeError` for an address or option :class:`Server` would not take, naming the fix.

    Websocket options (``heartbeat_period``...) given here are named as such: they go to
    :func:`~syncaerys.websocket`. Thread-safe; never blocks.
    """
    unknown = sorted(set(options) - set(ServerOptions.__annotations__))
    if unknown:
        websocket_options = [name for name in unknown if name in {f.name for f in fields(Options)}]
        if websocket_options:
            given = ", ".join(f"{name}={options[name]!r}" for name in websocket_options)
            raise TypeError(
                f"{caller} got the websocket option(s) {', '.join(websocket_options)}: websocket options go to "
                f"syncaerys.websocket(handler, {given}) (or to syncaerys.flask.Websockets/route), not to the server"
            )
        raise TypeError(
            f"{caller} got unknown option(s) {', '.join(unknown)}; the server's options: "
            f"{', '.join(sorted(ServerOptions.__annotations__))}"
        )
    if not isinstance(host, str):
        raise TypeError(f"{caller}: host must be an address as a str, such as '127.0.0.1', not {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise TypeError(f"{caller}: port must be an int from 0 (any free port) to 65535, not {port!r}")


class Server:
    """Serves a WSGI application (a Host, Router, gateway, or any app) on one address.

    ``port=0`` picks a free port; read it back from :attr:`port`. Use it as a
    context manager to serve from a background thread (tests do), or call
    :func:`run` to serve from the main thread until SIGINT/SIGTERM.

    :param ssl_context: serve TLS; the handshake runs in the connection's thread.
    :param max_connections: connections served at once (WebSocket clients
        included); past it new connections get a 503 (and the log a warning,
        at most every 10 s, naming this option). ``"auto"`` (the default):
        what the process's open-file limit allows, see
        :func:`default_max_connections`. ``None``: no limit.
    :param header_timeout: seconds a new connection has for its TLS handshake
        and request headers. ``None``: no limit.
    :param max_header_bytes: total size of the request headers (431 past it).
    :param trusted_proxies: addresses or networks of reverse proxies (nginx...)
        whose forwarding header (``proxy_header``) names the client:
        for a connection from one of them, ``REMOTE_ADDR`` (so
        ``get_info().remote_address``, ``request.remote_addr`` and the logs)
        is the client's address. ``None`` (the default): those headers are
        never believed, since any client can send them.
    :param proxy_header: the one header the trusted proxies write:
        ``"X-Forwarded-For"`` (the default) or ``"Forwarded"`` (RFC 7239). The
        other is never read: a proxy passes it through from the client (nginx
        does), so believing it would let any client choose its address.

    Thread model: :meth:`start`, :meth:`stop` and the properties may be called from any thread;
    :meth:`serve_forever` blocks the thread that calls it, and each connection is served in a thread of its
    own.
    """

    # Keyword options, each documented above and passed through by run() (ServerOptions): not a call to simplify.
    def __init__(  # noqa: PLR0913
        self,
        app: WSGIApplication,
        host: str = "127.0.0.1",
        port: int = 1337,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | Literal["auto"] | None = "auto",
        header_timeout: float | None = 10.0,
        max_header_bytes: int | None = 65536,
        trusted_proxies: Iterable[str] | None = None,
        proxy_header: str = "X-Forwarded-For",
    ) -> None:
        check_server_arguments(host, port, {})
        self.app = app
        self.ssl_context = ssl_context
        self._admission = Admission(max_connections)
        #: Connections served at once; ``"auto"`` resolved with :func:`default_max_connections`.
        self.max_connections: int | None = self._admission.limit
        #: Whose forwarding headers are believed (see ``trusted_proxies``).
        proxies = TrustedProxies(trusted_proxies or (), proxy_header)  # checks proxy_header even when unused
        self.trusted_proxies = proxies if trusted_proxies is not None else None
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        # Guards the state and the gateways.
        self._lock = threading.Lock()
        self.state = STOPPED
        self.gateways: list[Gateway] = _gateways_of(app)
        self._wsgi = HardenedServer(host, port, app, self, self._admission)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The address listened on (the one bound). Thread-safe; never blocks."""
        return str(self._wsgi.server_address[0])

    @property
    def port(self) -> int:
        """The port listened on (the one picked when ``port=0``). Thread-safe; never blocks."""
        return self._wsgi.server_port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``ws://127.0.0.1:1337`` (``wss://`` with TLS). Thread-safe; never blocks."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.ssl_context else 'ws'}://{host}:{self.port}"

    def connection_count(self) -> int:
        """The connections served now (WebSocket clients and HTTP requests), counted against ``max_connections``.

        Thread-safe; never blocks. A connection counts from its admission in the
        accept loop until its thread is done with it.
        """
        return self._admission.count

    def attach(self, gateway: Gateway) -> None:
        """Adopt ``gateway`` (and start it if this server runs): a gateway calls it at each request.

        Thread-safe; blocks only while the gateway starts (its ``on_start``).
        """
        if gateway in self.gateways:
            return
        with self._lock:
            if gateway not in self.gateways:
                self.gateways.append(gateway)
            started = self.state == STARTED
        if started:
            gateway.start()

    def start(self) -> None:
        """STARTING: call every known gateway's ``on_start``; errors propagate.

        Thread-safe (a second call raises :class:`RuntimeError`); blocks while the ``on_start`` calls run.
        """
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
            with self._lock:
                self.state = STOPPED
            raise
        with self._lock:
            self.state = STARTED
        logger.info("listening on %s", self.url.replace("ws", "http", 1))
        self._admission.report()
        _report_speedups()

    def serve_forever(self) -> None:
        """Accept connections until :meth:`stop` (or a KeyboardInterrupt).

        Call from one thread; blocks until the server stops.
        """
        self._wsgi.serve_forever(poll_interval=0.05)

    def serve_in_thread(self) -> None:
        """Start and serve from a background thread; :meth:`stop` ends it.

        Call once, from any thread; blocks while the ``on_start`` calls run, then returns: the serving goes on
        in a daemon thread.
        """
        self.start()
        self._thread = threading.Thread(target=self.serve_forever, name="syncaerys-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """STOPPING: close the listener, stop every gateway, then STOPPED.

        Thread-safe (a call while a stop is under way returns at once, without waiting for it); blocks until
        the listener is closed and every gateway stopped, each waiting at most its ``close_period`` plus one
        second for the closing handshakes. Not from the thread that runs :meth:`serve_forever`.
        """
        with self._lock:
            if self.state in (STOPPING, STOPPED):
                return
            self.state = STOPPING
            gateways = list(self.gateways)
        logger.info("stopping %s", self.url)
        if self._thread is not None:
            self._wsgi.shutdown()
            self._thread.join()
        self._wsgi.server_close()
        for gateway in gateways:
            gateway.stop()
        with self._lock:
            self.state = STOPPED
        logger.info("stopped %s", self.url)

    def __enter__(self) -> Server:
        self.serve_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_speedups_reported = False


def _report_speedups() -> None:
    """Say once per process when frames are unmasked by the pure-Python code (~45 times slower)."""
    global _speedups_reported
    if _speedups_reported or mask.SPEEDUPS:
        return
    _speedups_reported = True
    if os.environ.get("SYNCAERYS_NO_EXTENSIONS"):
        logger.info("SYNCAERYS_NO_EXTENSIONS is set: client frames are parsed and unmasked in pure Python")
    else:
        logger.warning(
            "the C extension syncaerys._speedups is not built: client frames are parsed and unmasked in pure Python, "
            "about 45 times slower; reinstall where a C compiler and the Python headers are present"
        )


def _gateways_of(app: WSGIApplication) -> list[Gateway]:
    if isinstance(app, Gateway):
        return [app]
    gateways = getattr(app, "gateways", None)
    if not callable(gateways):
        # A Flask app with the syncaerys.flask extension.
        extensions = getattr(app, "extensions", None)
        if isinstance(extensions, dict):
            gateways = getattr(extensions.get("syncaerys"), "gateways", None)
    if callable(gateways):
        return list(dict.fromkeys(gateways()))
    return []
