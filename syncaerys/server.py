"""The threaded server: werkzeug's threaded WSGI server with the Aerys lifecycle.

States: STOPPED -> STARTING (every gateway's ``on_start``) -> STARTED ->
STOPPING (listener closed, new handshakes get 503, ``on_stop``, clients
closed with 1001, closing handshakes awaited) -> STOPPED.

Threads: one per connection (werkzeug's ``ThreadingMixIn``; the thread that
handled an upgrade serves that client until it is gone), plus the thread that
runs :meth:`Server.serve_forever`, the shared timer and the shared flusher.

Hardening on top of werkzeug's server: at most ``max_connections`` at once
(past it a 503 is written from the accept loop, no thread is spent), a
deadline for the TLS handshake and the request headers together (a silent or
byte-a-second client loses its thread after ``header_timeout``), and a cap on
the total size of the request headers (431).
"""

from __future__ import annotations

import errno
import http.client
import io
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any
from typing import Literal
from typing import TypedDict

from werkzeug.serving import ThreadedWSGIServer
from werkzeug.serving import WSGIRequestHandler

from .early_data import EARLY_DATA
from .early_data import take_from_reader
from .gateway import STARTED
from .gateway import STARTING
from .gateway import STOPPED
from .gateway import STOPPING
from .gateway import Gateway
from .log import printable
from .protocol import mask
from .proxies import TrustedProxies
from .timer import TimerHandle
from .timer import shared_timer

__all__ = ["Server", "ServerOptions", "default_max_connections"]

logger = logging.getLogger("syncaerys.server")
http_logger = logging.getLogger("syncaerys.http")

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"


class _HeaderLimit:
    """Wraps the request's ``rfile`` while headers are read, to cap their total size."""

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw = raw
        self._left = limit
        self._first = True

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self.raw.readline(size)
        if self._first:
            self._first = False  # the request line: http.server limits it (414)
            return line
        self._left -= len(line)
        if self._left < 0:
            # parse_request() answers this with 431.
            raise http.client.LineTooLong("request headers")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


#: What is drained of a request body the application left unread, at most, and for how long.
DRAIN_LIMIT = 64 * 1024
DRAIN_TIMEOUT = 1.0


class _DrainLimit:
    """The request's ``rfile``: bounds what werkzeug drains once the response is done.

    werkzeug reads whatever body the application left (``rfile.read(10_000_000)``,
    up to 10 GB) so that the client sees the response rather than a reset; a
    client that sends part of a body and goes silent held the thread for as
    long as it liked. Once the response has started, reads here take at most
    ``DRAIN_LIMIT`` bytes in all, each waiting at most ``DRAIN_TIMEOUT``.
    """

    def __init__(self, raw: Any, handler: _RequestHandler) -> None:
        self.raw = raw
        self._handler = handler
        self._drained = 0

    def _draining(self) -> bool:
        return self._handler.response_done

    def read(self, size: int | None = -1) -> bytes:
        if not self._draining():
            return self.raw.read(size)  # type: ignore[no-any-return]
        left = DRAIN_LIMIT - self._drained
        if left <= 0:
            return b""
        self._handler.connection.settimeout(DRAIN_TIMEOUT)
        reader = getattr(self.raw, "read1", self.raw.read)
        data: bytes = reader(left if size is None or size < 0 else min(size, left))
        self._drained += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


#: What an upgraded request's handler keeps instead of its parsed headers (see make_environ).
_NO_HEADERS = http.client.HTTPMessage()


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler with TLS in the connection thread and header limits."""

    server: _ThreadedServer
    _deadline: TimerHandle | None = None
    _headers_done = False
    _timed_out = False
    _failed = False
    #: The response has started (its headers are written): what is read of the body now is a drain.
    response_done = False
    _early_data = b""
    _forwarded_for: str | None = None

    def setup(self) -> None:
        owner = self.server.owner
        if owner.header_timeout is not None:
            self._deadline = shared_timer().call_later(owner.header_timeout, self._too_slow)
        if owner.ssl_context is not None:
            try:
                tls = owner.ssl_context.wrap_socket(self.request, server_side=True, do_handshake_on_connect=False)
                self.request = tls
                tls.do_handshake()
            except (OSError, ValueError) as error:
                http_logger.info("TLS handshake with %s failed: %s", self.client_address[0], error)
                self._failed = True
        super().setup()
        if owner.max_header_bytes is not None:
            self.rfile = _HeaderLimit(self.rfile, owner.max_header_bytes)  # type: ignore[assignment]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._deadline is not None:
                self._deadline.cancel()
            if isinstance(self.request, ssl.SSLSocket):
                # wrap_socket() detached the accepted socket, so the server's own
                # shutdown_request() no longer reaches it: close the TLS one here.
                try:
                    socket.socket.shutdown(self.request, socket.SHUT_WR)
                except OSError:
                    pass
                self.request.close()

    def _too_slow(self) -> None:
        if not self._headers_done:
            self._timed_out = True
            http_logger.info("%s sent no complete request within header_timeout", self.client_address[0])
            try:
                socket.socket.shutdown(self.request, socket.SHUT_RDWR)
            except OSError:
                pass

    def handle(self) -> None:
        if not self._failed:
            super().handle()

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self._headers_done = True
        if ok and _ambiguous_length(self.headers):
            # RFC 7230 3.3.3: conflicting lengths, or a length with chunking, is how
            # requests are smuggled past proxies: refuse the request.
            self.send_error(400, "Conflicting Content-Length or Transfer-Encoding")
            ok = False
        if self._deadline is not None:
            self._deadline.cancel()
        if isinstance(self.rfile, _HeaderLimit):
            self.rfile = self.rfile.raw
        if (
            ok
            and (self.headers.get("Upgrade") or "").lower() == "websocket"
            and isinstance(self.rfile, io.BufferedReader)
        ):
            # A websocket is read straight from its socket for its whole life:
            # let go of the 8 KiB read buffer now (a client may send nothing
            # after its handshake request until it has seen the 101, RFC 6455 4.1).
            # detach(): dropping the reader would close the socket's file object.
            # What the buffer holds past the request (frames sent before the 101)
            # goes to the gateway first.
            self._early_data = take_from_reader(self.rfile, self.connection)
            self.rfile = self.rfile.detach()  # type: ignore[assignment]
        if ok:
            header_timeout = self.server.owner.header_timeout
            if header_timeout is not None:
                # A body is read with the same patience as the headers: at most this long
                # without a byte (a gateway that upgrades sets its socket back to blocking).
                self.connection.settimeout(header_timeout)
            self.rfile = _DrainLimit(self.rfile, self)  # type: ignore[assignment]
        return ok and not self._timed_out

    def make_environ(self) -> Any:
        environ = super().make_environ()
        environ["syncaerys.server"] = self.server.owner
        environ[EARLY_DATA] = self._early_data
        if isinstance(self.request, ssl.SSLSocket):
            environ["wsgi.url_scheme"] = "https"
        trusted = self.server.owner.trusted_proxies
        if trusted is not None:
            client = trusted.client_address(
                environ.get("REMOTE_ADDR", ""), environ.get("HTTP_FORWARDED"), environ.get("HTTP_X_FORWARDED_FOR")
            )
            if client is not None:
                environ["syncaerys.proxy_address"] = environ.get("REMOTE_ADDR")
                environ["REMOTE_ADDR"] = client
                environ["REMOTE_PORT"] = ""  # the proxy's port says nothing about the client
                self._forwarded_for = client
        if str(environ.get("HTTP_UPGRADE", "")).lower() == "websocket":
            # werkzeug reads the parsed headers only until here, and this handler lives as
            # long as the websocket: about 2 KiB per client not kept for nothing.
            self.headers = _NO_HEADERS
        return environ

    def end_headers(self) -> None:
        super().end_headers()
        # werkzeug writes the headers with the first bytes of the response. Marking the
        # drain here, rather than wrapping the application's response, costs nothing on
        # a websocket's path (a wrapper around the application measured 2.7x the server
        # CPU per MiB on the 1 MiB echo benchmark, for reasons not pinned down).
        self.response_done = True

    def address_string(self) -> str:
        return self._forwarded_for or super().address_string()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if http_logger.isEnabledFor(logging.DEBUG):
            http_logger.debug(
                '%s "%s" %s %s', printable(self.address_string()), printable(self.requestline), code, size
            )

    def log(self, type: str, message: str, *args: Any) -> None:
        # http.server reports a client's malformed request as an "error"
        # ("code 400, message ..."): the client's fault, not the server's.
        client_error = type == "error" and message.startswith("code ")
        level = logging.ERROR if type == "error" and not client_error else logging.INFO
        http_logger.log(level, message, *args)


def _ambiguous_length(headers: Any) -> bool:
    lengths = {value.strip() for value in headers.get_all("Content-Length") or ()}
    return len(lengths) > 1 or (bool(lengths) and headers.get("Transfer-Encoding") is not None)


class _ThreadedServer(ThreadedWSGIServer):
    """werkzeug's threaded server that refuses connections past a cap."""

    def __init__(self, host: str, port: int, app: Any, owner: Server) -> None:
        self.owner = owner
        self._bind_error: OSError | None = None
        super().__init__(host, port, app, handler=_RequestHandler)
        if self._bind_error is not None:
            error = self._bind_error
            self.server_close()
            shown = f"[{host}]" if ":" in host else host
            hint = ": another program listens there (pick another port, or 0 for a free one)"
            raise OSError(
                error.errno,
                f"cannot listen on {shown}:{port}: {error.strerror}{hint if error.errno == errno.EADDRINUSE else ''}",
            ) from error

    # werkzeug prints a bind error and calls sys.exit(1): keep the error for __init__ to raise instead.
    def server_bind(self) -> None:
        try:
            super().server_bind()
        except OSError as error:
            self._bind_error = error

    def server_activate(self) -> None:
        if self._bind_error is None:
            super().server_activate()

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                # The listening socket stays readable: without a pause the accept loop spins.
                self.owner._refused("out of file descriptors", error.strerror or "")
                time.sleep(_ACCEPT_BACKOFF)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.owner._admit():
            self.owner._refused("max_connections", client_address[0])
            if self.owner.ssl_context is None:
                # Over TLS a plaintext 503 would be garbage to the client (no handshake
                # happens in the accept loop): the connection is just closed.
                try:
                    request.send(_BUSY, socket.MSG_DONTWAIT)
                except OSError:
                    pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError:  # no thread could be started
            self.owner._release()
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.owner._release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        http_logger.exception("error while serving %s", client_address[0] if client_address else "?")


#: How long the accept loop pauses when the process is out of file descriptors.
_ACCEPT_BACKOFF = 0.05
#: Descriptors kept for everything that is not a connection (logs, Redis, the flusher, the app's own).
_MIN_FD_RESERVE = 32


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


class _RefusalLog:
    """Warns about refused connections at most every ``interval`` seconds, with a count."""

    def __init__(self, interval: float = 10.0) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last = -interval
        self._count = 0

    def refused(self, cause: str, detail: str, limit: int | None) -> None:
        with self._lock:
            self._count += 1
            now = time.monotonic()
            if now - self._last < self._interval:
                return
            count, self._count, self._last = self._count, 0, now
        if cause == "max_connections":
            http_logger.warning(
                "max_connections=%s reached: %d connection(s) refused with 503 (the last from %s); if the load is "
                "legitimate, raise max_connections= (and the open-file limit, ulimit -n)",
                limit,
                count,
                detail,
            )
        else:
            http_logger.warning(
                "cannot accept connections: %s (%s), %d time(s); raise the open-file limit (ulimit -n) or lower "
                "max_connections (now %s)",
                cause,
                detail,
                count,
                limit,
            )


class ServerOptions(TypedDict, total=False):
    """The keyword options of :class:`Server` that :func:`run` passes on, for type checkers."""

    ssl_context: ssl.SSLContext | None
    max_connections: int | Literal["auto"] | None
    header_timeout: float | None
    max_header_bytes: int | None
    trusted_proxies: Iterable[str] | None


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
        whose ``X-Forwarded-For`` / ``Forwarded`` headers name the client:
        for a connection from one of them, ``REMOTE_ADDR`` (so
        ``get_info().remote_address``, ``request.remote_addr`` and the logs)
        is the client's address. ``None`` (the default): those headers are
        never believed, since any client can send them.

    Thread model: :meth:`start`, :meth:`stop` and the properties may be called from any thread;
    :meth:`serve_forever` blocks the thread that calls it, and each connection is served in a thread of its
    own.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 1337,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | Literal["auto"] | None = "auto",
        header_timeout: float | None = 10.0,
        max_header_bytes: int | None = 65536,
        trusted_proxies: Iterable[str] | None = None,
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        #: Connections served at once; ``"auto"`` resolved with :func:`default_max_connections`.
        self.max_connections: int | None = default_max_connections() if max_connections == "auto" else max_connections
        if self.max_connections is not None and (
            isinstance(self.max_connections, bool)
            or not isinstance(self.max_connections, int)
            or self.max_connections < 1
        ):
            raise ValueError(f"max_connections must be a positive int, 'auto' or None, not {max_connections!r}")
        self._refusals = _RefusalLog()
        #: Whose forwarding headers are believed (see ``trusted_proxies``).
        self.trusted_proxies = TrustedProxies(trusted_proxies) if trusted_proxies is not None else None
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self._connections = 0
        # Guards the state, the gateways and the connection count.
        self._lock = threading.Lock()
        self.state = STOPPED
        self.gateways: list[Gateway] = _gateways_of(app)
        self._wsgi = _ThreadedServer(host, port, app, self)
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

    def _admit(self) -> bool:
        with self._lock:
            if self.max_connections is not None and self._connections >= self.max_connections:
                return False
            self._connections += 1
            return True

    def _refused(self, cause: str, detail: str) -> None:
        self._refusals.refused(cause, detail, self.max_connections)

    def _release(self) -> None:
        with self._lock:
            self._connections -= 1

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
            self.state = STOPPED
            raise
        self.state = STARTED
        logger.info("listening on %s", self.url.replace("ws", "http", 1))
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
        logger.info("SYNCAERYS_NO_EXTENSIONS is set: client frames are unmasked in pure Python")
    else:
        logger.warning(
            "the C extension syncaerys._speedups is not built: client frames are unmasked in pure Python, "
            "about 45 times slower; reinstall where a C compiler and the Python headers are present"
        )


def _gateways_of(app: Any) -> list[Gateway]:
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
