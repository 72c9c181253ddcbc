"""Gateway: the WSGI application that upgrades requests and runs clients.

:func:`websocket` builds one from a handler. It checks the handshake, calls
``on_handshake``, writes the 101 itself on the raw socket (found with
simple-websocket's knowledge of werkzeug, gunicorn, eventlet and gevent) and
then serves the client in the request's own thread until it is gone.
"""

from __future__ import annotations

import enum
import logging
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

import simple_websocket.ws
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as WerkzeugResponse

from .backplane.base import LocalBackplane
from .connection import ClientContext
from .connection import Connection
from .early_data import request_reader
from .early_data import take_buffered
from .endpoint import Endpoint
from .endpoint import LocalNode
from .exceptions import ClientException
from .options import Options
from .options import WebsocketOptions
from .protocol.deflate import DeflateParams
from .protocol.deflate import negotiate
from .protocol.handshake import Rejection
from .protocol.handshake import check_origin
from .protocol.handshake import check_request
from .protocol.handshake import offered_subprotocols
from .protocol.handshake import response_101
from .registry import ClientRegistry
from .response import Response
from .stats import GatewayStats
from .stats import Totals
from .transport import transport_for
from .websocket import Callbacks
from .websocket import check_route_arguments

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Gateway", "GatewayState", "websocket", "live_gateways", "STOPPED", "STARTING", "STARTED", "STOPPING"]

logger = logging.getLogger("syncaerys.gateway")

#: Environ keys a framework integration (syncaerys.flask, syncaerys.django) sets before calling
#: the gateway: the route's arguments for ``on_handshake``, the framework's own request object to
#: hand to ``on_handshake`` instead of a werkzeug ``Request``, and the framework's verdict on the
#: Origin by its own settings (Django's ``CSRF_TRUSTED_ORIGINS``): a ``Rejection``, or ``None`` to
#: let the client in, given in place of the gateway's own ``allowed_origins`` check.
ROUTE_ARGS = "syncaerys.route_args"
FRAMEWORK_REQUEST = "syncaerys.request"
ORIGIN_VERDICT = "syncaerys.origin_verdict"


class GatewayState(str, enum.Enum):
    """A gateway's lifecycle (``gateway.state``); equal to its name as a ``str``."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    STARTED = "STARTED"
    STOPPING = "STOPPING"


STOPPED = GatewayState.STOPPED
STARTING = GatewayState.STARTING
STARTED = GatewayState.STARTED
STOPPING = GatewayState.STOPPING

# Every gateway alive in the process, for host-server hooks (gunicorn's worker exit).
_live: weakref.WeakSet[Gateway] = weakref.WeakSet()
_live_lock = threading.Lock()


def live_gateways() -> list[Gateway]:
    """Every :class:`Gateway` alive in this process. Thread-safe; never blocks."""
    with _live_lock:
        return list(_live)


def websocket(handler: object, **options: Unpack[WebsocketOptions]) -> Gateway:
    """Wrap a :class:`~syncaerys.Websocket` handler in a WSGI application.

    Options are validated now (unknown names and bad values raise
    :class:`~syncaerys.OptionError`); see :class:`~syncaerys.options.Options`.
    Thread-safe; never blocks: nothing starts until the gateway does.
    """
    return Gateway(handler, Options.from_kwargs(options))


class _CaptureSocket(simple_websocket.ws.Base):  # type: ignore[misc]
    """Keeps the socket simple-websocket found and skips the rest of its setup.

    simple-websocket's ``Server.__init__`` knows where werkzeug, gunicorn,
    eventlet and gevent put the raw socket in the environ, then hands it to
    ``Base.__init__``, which would write its own 101 and start a reader thread.
    Placed between the two in the MRO, this class takes the socket and stops.
    """

    def __init__(self, sock: Any = None, **kwargs: Any) -> None:
        self.sock = sock


class _SocketLocator(simple_websocket.ws.Server, _CaptureSocket):  # type: ignore[misc]
    pass


class HostError(RuntimeError):
    """The WSGI server hosting the gateway cannot serve a websocket; ``status`` is the answer to give."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


#: What gevent must have patched for syncaerys's threads, locks and sockets to cooperate with its loop.
_GEVENT_MODULES = ("socket", "threading", "select")


def find_socket(environ: dict[str, Any]) -> socket.socket:
    """The client's raw socket from the WSGI environ; :class:`HostError` if the host cannot give one.

    Thread-safe; never blocks.
    """
    software = str(environ.get("SERVER_SOFTWARE") or "this WSGI server")
    if software.startswith("gevent"):
        return _gevent_socket(environ, software)
    try:
        sock: socket.socket | None = _SocketLocator(environ).sock
    except RuntimeError:
        sock = None
    if sock is None:
        sock = socket_under_input(environ)
    if sock is None:
        raise HostError(
            f"{software} does not give WSGI applications the client's socket; serve the gateway with "
            "syncaerys.Server, werkzeug (app.run, flask run), Django's runserver, gunicorn -k gthread or "
            "gevent's WSGIServer",
            501,
        )
    return sock


def socket_under_input(environ: dict[str, Any]) -> socket.socket | None:
    """The socket under :func:`request_reader`'s reader (a ``socket.SocketIO``), or ``None``.

    Thread-safe; never blocks.
    """
    reader = request_reader(environ)
    sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _and_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _gevent_socket(environ: dict[str, Any], software: str) -> socket.socket:
    monkey = sys.modules.get("gevent.monkey")
    unpatched = [name for name in _GEVENT_MODULES if monkey is None or not monkey.is_module_patched(name)]
    if unpatched:
        raise HostError(
            f"{software} serves this gateway, but {_and_list(unpatched)} {'is' if len(unpatched) == 1 else 'are'} "
            "not monkey-patched: syncaerys's "
            "client threads would block gevent's loop. Call gevent.monkey.patch_all() first thing in the "
            "program, before any other import",
            500,
        )
    # For an upgrade request gevent's wsgi.input is the connection's own reader (a
    # BufferedReader over a SocketIO). The socket under it is taken itself, not a dup as
    # simple-websocket takes: the reader and the connection share one socket object, so
    # that early_data can empty the reader without waiting, and a client costs one descriptor.
    sock = getattr(getattr(environ.get("wsgi.input"), "raw", None), "_sock", None)
    if not isinstance(sock, socket.socket):
        raise HostError(f"{software} gave no socket under wsgi.input (is this an upgrade request?)", 501)
    return sock


class Gateway:
    """A WSGI application serving one :class:`~syncaerys.Websocket` handler.

    Under syncaerys's own server the gateway starts with the server; under
    another WSGI server it starts at its first request, or when you call
    :meth:`start`. :meth:`stop` runs ``on_stop`` and closes every client with
    1001.

    Every method is thread-safe. :meth:`start` and :meth:`stop` block (they
    run the handler's ``on_start``/``on_stop`` and start or stop the
    backplane); the rest never block. Called as a WSGI application, the
    gateway blocks the request's thread for the client's whole life.
    """

    def __init__(self, handler: object, options: Options, *, callbacks: Callbacks | None = None) -> None:
        self.handler = handler
        #: The handler's methods as the gateway calls them (a framework integration may wrap them:
        #: :mod:`syncaerys.django` runs Django's database hygiene around each).
        self.callbacks = Callbacks.resolve(handler) if callbacks is None else callbacks
        self.options = options
        backplane = options.backplane if options.backplane is not None else LocalBackplane()
        self._started = threading.Event()
        # The one owner of the clients, their rooms and the handshakes in progress.
        self._clients = ClientRegistry(backplane)
        #: The endpoint handed to ``on_start``: the way in for code outside
        #: the handler (a view, a background job). Usable once the gateway
        #: started; before that its sends raise :class:`~syncaerys.NotStartedError`.
        self.endpoint = Endpoint(self._clients, backplane, self._started)
        backplane.attach(LocalNode(self.endpoint, self._clients, self.callbacks))
        #: Counters for operators (see :mod:`syncaerys.metrics`).
        self.stats = GatewayStats()
        self._context = ClientContext(options, self.callbacks, self.stats, self._is_stopping, self._clients.remove)
        self.state = STOPPED
        self._stopped = False
        # Serializes start() and stop().
        self._lifecycle_lock = threading.RLock()
        # The sets of route argument names on_handshake is known to take.
        self._checked_arguments: set[frozenset[str]] = set()
        with _live_lock:
            _live.add(self)

    def connection_count(self) -> int:
        """How many clients are registered now, open or closing (``get_clients()`` lists the open ones).

        Thread-safe; never blocks. 0 once every ``on_close`` has run.
        """
        return len(self._clients)

    def live_traffic(self) -> tuple[int, int, Totals]:
        """The open clients now, the bytes queued for them, and their traffic so far.

        Thread-safe; never blocks (a snapshot of each client). With
        :attr:`stats` it gives the gateway's whole traffic (``syncaerys.metrics``).
        """
        live = Totals()
        clients = queued = 0
        for connection in self._clients.connections():
            clients += connection.is_open
            queued += connection.queue.queued_bytes
            live.add(connection.traffic())
        return clients, queued, live

    def check_route_arguments(self, rule: str, arguments: Iterable[str]) -> None:
        """Raise :class:`TypeError` unless ``on_handshake`` takes ``rule``'s arguments as keywords.

        Routers and the Flask helpers call it when the gateway is mounted.
        Thread-safe; never blocks.
        """
        handler = type(self.handler).__name__
        check_route_arguments(self.callbacks.on_handshake, arguments, rule, f"{handler}.on_handshake")

    # -- lifecycle

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (no new clients, no more ``on_data``). Thread-safe; never blocks."""
        return self._stopped

    def _is_stopping(self) -> bool:
        return self._stopped

    def start(self) -> None:
        """Call ``on_start(endpoint)``; errors propagate and leave it stopped.

        Thread-safe (serialized with :meth:`stop`; nothing if already started).
        Blocks: it starts the backplane first (a Redis backplane waits for
        Redis, up to a few ``request_timeout``), then runs ``on_start`` in this thread.
        """
        with self._lifecycle_lock:
            if self.state != STOPPED or self._stopped:
                return
            self.state = STARTING
            backplane = self.endpoint.backplane
            backplane.start()
            self._started.set()
            try:
                self.callbacks.on_start(self.endpoint)
            except BaseException:
                self._started.clear()
                self.state = STOPPED
                backplane.stop()
                raise
            self.state = STARTED

    def stop(self, timeout: float | None = None) -> None:
        """Stop: ``on_stop()``, then close every client with 1001 and wait.

        Waits up to ``timeout`` seconds (default: ``close_period`` plus one) for
        the handshakes in progress, the clients' closing handshakes and
        ``on_close`` calls, then stops the backplane (a Redis backplane waits
        for its threads). Thread-safe (serialized with :meth:`start`); blocks,
        and runs ``on_stop`` in this thread.
        """
        with self._lifecycle_lock:
            if self.state != STARTED:
                self._stopped = True
                return
            self.state = STOPPING
            deadline = time.monotonic() + (self.options.close_period + 1.0 if timeout is None else timeout)
            # From here no handshake is admitted or registered (they get 503); the ones
            # admitted before finish first (through on_open), so that no on_open runs
            # after on_stop and no client is left unanswered.
            self._stopped = True
            pending = self._clients.close_admission(deadline)
            if pending:
                logger.warning("%d handshakes still in progress when stopping", pending)
            try:
                self.callbacks.on_stop()
            except Exception:
                logger.exception("exception in on_stop")
            self._clients.close_all(1001, "Server shutting down")
            if not self._clients.wait_until_empty(deadline):
                self._log_stuck()
            self.endpoint.backplane.stop()
            self.state = STOPPED

    def _log_stuck(self) -> None:
        connections = self._clients.connections()
        busy = [(c.id, c.busy_in()) for c in connections]
        in_code = [f"client {i} in {b[0]} for {b[1]:.1f} s" for i, b in busy if b is not None]
        logger.warning(
            "%d clients still closing after the stop timeout%s",
            len(connections),
            f"; blocked in handler code: {', '.join(in_code)}" if in_code else "",
        )

    # -- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response = self._counting(start_response)
        server = environ.get("syncaerys.server")
        if server is not None:
            server.attach(self)
        elif self.state == STOPPED and not self._stopped:
            self.start()
        rejection = check_request(
            environ.get("REQUEST_METHOD", ""),
            environ.get("SERVER_PROTOCOL", ""),
            _EnvironHeaders(environ),
            _has_body(environ),
        )
        if rejection is None:
            if ORIGIN_VERDICT in environ:
                rejection = environ[ORIGIN_VERDICT]
            else:
                origin, host = environ.get("HTTP_ORIGIN"), environ.get("HTTP_HOST")
                rejection = check_origin(origin, self.options.allowed_origins, host)
        if rejection is None and not self._admit_handshake():
            rejection = _SHUTTING_DOWN
        if rejection is not None:
            logger.info("handshake refused with %d: %s", rejection.status, rejection.reason)
            return _reject(rejection, start_response, environ)
        finished = [False]
        try:
            return self._handshake(environ, start_response, finished)
        finally:
            if not finished[0]:
                self._handshake_finished()

    def _counting(self, start_response: Any) -> Any:
        """``start_response`` that counts refusals by status (an upgrade is counted when its 101 is written)."""
        stats = self.stats

        def counted(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            code = status.split(" ", 1)[0]
            if code != "101":
                stats.handshake(code)
            return (
                start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)
            )

        return counted

    def _admit_handshake(self) -> bool:
        return self.state == STARTED and not self._stopped and self._clients.admit_handshake()

    def _handshake_finished(self) -> None:
        self._clients.handshake_finished()

    def _handshake(self, environ: dict[str, Any], start_response: Any, finished: list[bool]) -> Iterable[bytes]:
        """From finding the socket to serving the client; ``finished`` set once the handshake is over."""
        try:
            sock = find_socket(environ)
        except HostError as error:
            logger.error("cannot upgrade: %s", error)
            software = environ.get("SERVER_SOFTWARE") or "this WSGI server"
            return _reject(Rejection(error.status, f"{software} cannot upgrade to WebSocket"), start_response, environ)

        request = environ.get(FRAMEWORK_REQUEST) or Request(environ)
        response = Response(101)
        offered = offered_subprotocols(environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL"))
        response.subprotocol = next((p for p in self.options.subprotocols if p in offered), None)
        route_args = environ.get(ROUTE_ARGS) or {}
        if frozenset(route_args) not in self._checked_arguments:
            # Mounted routes were checked at mount; this catches serve() from a view of the user's.
            try:
                self.check_route_arguments(request.path, route_args)
            except TypeError as error:
                logger.error("cannot call on_handshake: %s", error)
                return _reject(Rejection(500, "on_handshake cannot take the route arguments"), start_response, environ)
            self._checked_arguments.add(frozenset(route_args))
        try:
            handshake_data = self.callbacks.on_handshake(request, response, **route_args)
        except Exception:
            logger.exception("exception in on_handshake")
            return _reject(Rejection(500, "exception in on_handshake"), start_response, environ)
        if isinstance(handshake_data, (WerkzeugResponse, Response)):
            return self._returned_response(handshake_data, environ, start_response)
        if response.status != 101:
            if response.status >= 300:
                start_response(response.status_line, response.wsgi_headers())
                return [response.body]
            logger.error("on_handshake set status %d; 101 or 300-599 required", response.status)
            return _reject(Rejection(500, "invalid handshake status"), start_response, environ)
        if response.subprotocol is not None and response.subprotocol not in offered:
            logger.error("on_handshake chose subprotocol %r, which the client did not offer", response.subprotocol)
            return _reject(Rejection(500, "invalid subprotocol"), start_response, environ)

        deflate = None
        extra_headers = list(response.headers.items())
        if self.options.compression:
            deflate = negotiate(environ.get("HTTP_SEC_WEBSOCKET_EXTENSIONS"), self.options.compression_window_bits)
            if deflate is not None:
                extra_headers.append(("Sec-WebSocket-Extensions", deflate.response_header()))
        try:
            head = response_101(environ["HTTP_SEC_WEBSOCKET_KEY"], response.subprotocol, extra_headers)
        except ValueError as error:
            logger.error("cannot upgrade: %s", error)
            return _reject(Rejection(500, str(error)), start_response, environ)
        subprotocol = response.subprotocol
        # This frame stays on the stack for the client's whole life: nothing of the
        # handshake that the client does not need is kept (about 1 KiB per client).
        del request, response, offered, extra_headers
        return self._serve(environ, start_response, sock, head, subprotocol, handshake_data, deflate, finished)

    def _returned_response(
        self, denial: WerkzeugResponse | Response, environ: dict[str, Any], start_response: Any
    ) -> Iterable[bytes]:
        """``on_handshake`` returned a response object: deny with it, or refuse to guess."""
        status = denial.status_code if isinstance(denial, WerkzeugResponse) else denial.status
        if status >= 300:
            logger.info("handshake denied by on_handshake with %d", status)
            return denial(environ, start_response)
        logger.error(
            "on_handshake returned a %s with status %d: return one with a status of 300 or more to deny, "
            "or return the data for on_open (set response.status on the response it was given to deny)",
            type(denial).__name__,
            status,
        )
        return _reject(Rejection(500, "on_handshake returned a response that does not deny"), start_response, environ)

    def _serve(
        self,
        environ: dict[str, Any],
        start_response: Any,
        sock: socket.socket,
        head: bytes,
        subprotocol: str | None,
        handshake_data: Any,
        deflate: DeflateParams | None,
        finished: list[bool],
    ) -> Iterable[bytes]:
        sock.settimeout(None)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket)
        remote = environ.get("REMOTE_ADDR", "?")
        if environ.get("REMOTE_PORT"):
            remote = f"{remote}:{environ['REMOTE_PORT']}"
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        transport = transport_for(sock)
        client_id = self.endpoint.backplane.next_client_id()
        connection = Connection(self._context, transport, client_id, remote, subprotocol, path, deflate)
        early = take_buffered(environ, sock)
        if early:
            connection.received(early)
        # Registered before the 101 goes out, so that a client that has seen the 101
        # is known to stop() and to broadcasts; its queue holds what they send until
        # the 101 is written, so that no frame can overtake it.
        if not self._clients.add(connection):
            # stop() began while on_handshake ran: no 101 now, the client is told to come back.
            logger.info("handshake refused with 503: the server began stopping during on_handshake")
            return _reject(_SHUTTING_DOWN, start_response, environ)
        try:
            transport.send_all(head, self.options.close_period)
        except OSError:
            logger.info("client went away before the 101 was written")
            for waiter in connection.queue.shutdown():
                waiter.message_failed(connection.id, ClientException("the client went away during the handshake"))
            self._clients.remove(connection)
            return self._finish_wsgi(sock, start_response)
        self.stats.handshake("accepted")
        connection.release()
        self.endpoint.backplane.wait_announced(connection.id)

        def opened() -> None:
            finished[0] = True
            self._handshake_finished()

        connection.run(handshake_data, opened)
        return self._finish_wsgi(sock, start_response)

    @staticmethod
    def _finish_wsgi(sock: socket.socket, start_response: Any) -> Iterable[bytes]:
        # The host server will try to write a response once we return. With the
        # socket shut down that write fails with EPIPE, which werkzeug and
        # gunicorn treat as a dropped client: nothing reaches the wire after our
        # close frame.
        try:
            # The base class's method: ssl.SSLSocket.shutdown would also drop the TLS state.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass
        start_response("101 Switching Protocols", [])
        return []


class _EnvironHeaders:
    """Header lookup straight from the environ (no parsing of anything else)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ

    def get(self, key: str, default: None = None) -> str | None:
        value = self._environ.get("HTTP_" + key.upper().replace("-", "_"))
        return value if isinstance(value, str) else default


def _has_body(environ: dict[str, Any]) -> bool:
    length = environ.get("CONTENT_LENGTH", "")
    return length not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ


_SHUTTING_DOWN = Rejection(503, "Server shutting down", [("Retry-After", "1")])


def _reject(rejection: Rejection, start_response: Any, environ: dict[str, Any]) -> Iterable[bytes]:
    body = rejection.body
    headers = [
        *rejection.headers,
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    # No "Connection: close" of ours: PEP 3333 forbids hop-by-hop headers from
    # applications, and werkzeug's server (ours too) always adds it.
    if str(environ.get("SERVER_SOFTWARE", "")).startswith("Werkzeug/"):
        _bound_werkzeug_drain(environ)
    start_response(rejection.status_line, headers)
    return [body]


#: How long werkzeug's dev server may wait for each read of a refused request's body.
_FOREIGN_DRAIN_TIMEOUT = 1.0


def _bound_werkzeug_drain(environ: dict[str, Any]) -> None:
    """After the response, werkzeug's dev server reads what is left of the body with no time limit.

    A client that sent part of a body and went silent would hold the thread;
    with a timeout on the socket, that read ends after a second of silence
    and werkzeug drops the connection (our own server bounds it itself).
    """
    try:
        find_socket(environ).settimeout(_FOREIGN_DRAIN_TIMEOUT)
    except (RuntimeError, OSError):
        pass
