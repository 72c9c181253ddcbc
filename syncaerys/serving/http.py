"""The HTTP side of syncaerys's server: werkzeug's threaded server, hardened.

On top of werkzeug's: at most ``max_connections`` at once (past it a 503 is
written from the accept loop, no thread is spent; :mod:`.admission` counts), a
deadline for the TLS handshake and the request headers together (a silent or
byte-a-second client loses its thread after ``header_timeout``), a cap on the
total size of the request headers (431), a refusal of requests with
ambiguous lengths (400), a bounded drain of an unread body, the client's
address from trusted proxies, and the bytes read past an upgrade request
(early data) handed to the gateway. Requests run on threads kept for the
next request (:mod:`.request_threads`), the TLS handshake included; an
upgrade request hands its client to a thread of its own (:mod:`.handoff`).
"""

from __future__ import annotations

import errno
import functools
import http.client
import io
import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from werkzeug.serving import ThreadedWSGIServer
from werkzeug.serving import WSGIRequestHandler

from ..client.timer import TimerHandle
from ..client.timer import shared_timer
from ..protocol.logsafe import printable
from .admission import Admission
from .early_data import EARLY_DATA
from .early_data import take_from_reader
from .handoff import HANDOFF
from .handoff import Handoff
from .proxies import TrustedProxies
from .request_threads import RequestThreads

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["HardenedServer", "Limits", "DRAIN_LIMIT", "DRAIN_TIMEOUT"]

http_logger = logging.getLogger("syncaerys.http")

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"


class Limits(Protocol):
    """What the hardening reads, at each connection, of the server that owns it (:class:`~syncaerys.Server`)."""

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """Serve TLS with it, or plain HTTP (``None``)."""
        ...

    @property
    def header_timeout(self) -> float | None:
        """Seconds for the TLS handshake and the request headers, then for each read of a body."""
        ...

    @property
    def max_header_bytes(self) -> int | None:
        """The total size of a request's headers (431 past it)."""
        ...

    @property
    def trusted_proxies(self) -> TrustedProxies | None:
        """Whose forwarding headers name the client."""
        ...


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
        if self._handler.handoff.started:
            return b""  # the client's frames, for its own thread
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

    server: HardenedServer
    _deadline: TimerHandle | None = None
    _headers_done = False
    _timed_out = False
    _failed = False
    #: The response has started (its headers are written): what is read of the body now is a drain.
    response_done = False
    _early_data = b""
    _forwarded_for: str | None = None

    def __init__(self, request: Any, client_address: Any, server: HardenedServer, handoff: Handoff) -> None:
        #: This request's offer to hand its client to a thread of its own (made to upgrade requests).
        self.handoff = handoff
        super().__init__(request, client_address, server)

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
            if isinstance(self.request, ssl.SSLSocket) and not self.handoff.started:
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

    def handle_one_request(self) -> None:
        super().handle_one_request()
        if self.handoff.started:
            self.close_connection = True  # the socket is the client's now

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
            client = trusted.client_address(environ.get("REMOTE_ADDR", ""), environ.get(trusted.environ_key))
            if client is not None:
                environ["syncaerys.proxy_address"] = environ.get("REMOTE_ADDR")
                environ["REMOTE_ADDR"] = client
                environ["REMOTE_PORT"] = ""  # the proxy's port says nothing about the client
                self._forwarded_for = client
        if str(environ.get("HTTP_UPGRADE", "")).lower() == "websocket":
            environ[HANDOFF] = self.handoff
            # werkzeug reads the parsed headers only until here, and this handler lives as
            # long as the websocket: about 2 KiB per client not kept for nothing.
            self.headers = _NO_HEADERS
        return environ

    def flush_headers(self) -> None:
        if not self.handoff.started:
            super().flush_headers()
        # Else werkzeug is writing the 101 the gateway answered with, after the gateway
        # wrote its own and handed the socket to the client's thread: nothing goes out.

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
            address, line = printable(self.address_string()), printable(self.requestline)
            http_logger.debug('%s "%s" %s %s', address, line, code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        # http.server reports a client's malformed request as an "error"
        # ("code 400, message ..."): the client's fault, not the server's.
        client_error = type == "error" and message.startswith("code ")
        level = logging.ERROR if type == "error" and not client_error else logging.INFO
        http_logger.log(level, message, *args)


def _ambiguous_length(headers: Any) -> bool:
    lengths = {value.strip() for value in headers.get_all("Content-Length") or ()}
    return len(lengths) > 1 or (bool(lengths) and headers.get("Transfer-Encoding") is not None)


class HardenedServer(ThreadedWSGIServer):
    """werkzeug's threaded server that refuses connections past a cap.

    ``owner`` (the :class:`~syncaerys.Server`) gives the limits and is what
    ``environ["syncaerys.server"]`` holds; ``admission`` decides who gets in.
    A bind error is raised from here as an :class:`OSError` naming the address.
    """

    def __init__(self, host: str, port: int, app: WSGIApplication, owner: Limits, admission: Admission) -> None:
        self.owner = owner
        self.admission = admission
        self._bind_error: OSError | None = None
        self._request_threads = RequestThreads("syncaerys-http")
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
                self.admission.refused("out of file descriptors", error.strerror or "")
                time.sleep(_ACCEPT_BACKOFF)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.admission.admit():
            self.admission.refused("max_connections", client_address[0])
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
            self._request_threads.submit(functools.partial(self.process_request_thread, request, client_address))
        except RuntimeError:  # no thread could be started
            self.admission.release()
            self.shutdown_request(request)
            raise

    def server_close(self) -> None:
        super().server_close()
        self._request_threads.close()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        handoff = Handoff()
        served = request
        try:
            handler = _RequestHandler(request, client_address, self, handoff)
            served = handler.request  # the TLS socket, once wrapped
            del handler  # what the request held goes now, also when a thread took its client
        except Exception:
            self.handle_error(request, client_address)
        finally:
            if handoff.started:
                handoff.request_over(lambda: self._close_client(request, served))
            else:
                self.shutdown_request(request)
                self.admission.release()

    def _close_client(self, request: Any, served: Any) -> None:
        """Close a client's socket once both its request and its client are over."""
        try:
            _discard_unread(served)
            if served is not request:
                # wrap_socket() detached the accepted socket: the TLS one is closed here.
                try:
                    socket.socket.shutdown(served, socket.SHUT_WR)
                except OSError:
                    pass
                served.close()
            self.shutdown_request(request)
        finally:
            self.admission.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        http_logger.exception("error while serving %s", client_address[0] if client_address else "?")


def _discard_unread(sock: socket.socket) -> None:
    """Read and drop what the peer sent that nobody read (at most ``DRAIN_LIMIT`` bytes).

    A socket closed with unread bytes sends a reset, which can destroy the close
    frame still on its way to the client; werkzeug's drain after a request did
    this for a client served inside it. The socket is shut down by now, so a
    read returns at once when nothing is left. Never blocks longer than
    ``DRAIN_TIMEOUT``.
    """
    buffer = bytearray(4096)
    left = DRAIN_LIMIT
    try:
        sock.settimeout(DRAIN_TIMEOUT)
        while left > 0:
            # The base class's method: on a TLS socket the bytes are records, dropped as they are.
            read = socket.socket.recv_into(sock, buffer, min(left, len(buffer)))
            if not read:
                break
            left -= read
    except OSError:
        pass


#: How long the accept loop pauses when the process is out of file descriptors.
_ACCEPT_BACKOFF = 0.05
