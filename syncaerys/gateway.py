"""Gateway: the WSGI application that upgrades requests and runs clients.

:func:`websocket` builds one from a handler. It checks the handshake, calls
``on_handshake``, writes the 101 itself on the raw socket (found by
:func:`~syncaerys.serving.host_socket.find_socket`) and then serves the client
in the request's own thread until it is gone. The protocol's decisions are
:mod:`syncaerys.protocol.handshake`'s; the gateway does the I/O and the calls
into the application.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as WerkzeugResponse

from .backplane.base import LocalBackplane
from .client.connection import ClientContext
from .client.connection import Connection
from .client.registry import ClientRegistry
from .client.sendqueue import shared_flusher
from .client.stats import GatewayStats
from .client.stats import Totals
from .client.timer import shared_timer
from .client.transport import transport_for
from .endpoint import Endpoint
from .endpoint import LocalNode
from .exceptions import ClientClosed
from .exceptions import HostError
from .handshake_result import denial_mistake
from .options import Options
from .options import WebsocketOptions
from .protocol.handshake import LOOPBACK_IF_LOCAL
from .protocol.handshake import Accept
from .protocol.handshake import Rejection
from .protocol.handshake import accept
from .protocol.handshake import check_host
from .protocol.handshake import check_origin
from .protocol.handshake import check_request
from .protocol.handshake import choose_subprotocol
from .protocol.handshake import host_name
from .protocol.handshake import is_loopback_name
from .response import Response
from .serving.early_data import take_buffered
from .serving.handoff import HANDOFF
from .serving.handoff import Handoff
from .serving.host_socket import find_socket
from .websocket import Callbacks
from .websocket import check_route_arguments
from .websocket import note_started

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment
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


class Gateway:
    """A WSGI application serving one :class:`~syncaerys.Websocket` handler.

    Under syncaerys's own server the gateway starts with the server; under
    another WSGI server it starts at its first request, or when you call
    :meth:`start`. :meth:`stop` runs ``on_stop`` and closes every client with
    1001.

    One gateway is one endpoint: mounted on several paths, routers, Flask apps
    or servers of one process, it serves them all with one set of clients and
    rooms, one ``on_start`` and one ``on_stop`` (``request.path`` in
    ``on_handshake`` tells the paths apart). The first stop, by any of its
    servers, stops it for all of them. For separate endpoints, build one
    gateway per mount.

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

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no client is registered (every ``on_close`` has run); whether it happened in time.

        Thread-safe; blocks at most ``timeout`` seconds. New clients may come meanwhile:
        tests close them first (``syncaerys.django.testing.disconnect_all``).
        """
        return self._clients.wait_until_empty(time.monotonic() + timeout)

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
            # The clients' deadlines and leftover-writing threads, now: a stop at the interpreter's
            # exit must not start one.
            shared_timer().start()
            shared_flusher().start()
            backplane = self.endpoint.backplane
            backplane.start()
            self._started.set()
            try:
                self.callbacks.on_start(self.endpoint)
                note_started(self.handler)
            except BaseException:
                self._started.clear()
                self.state = STOPPED
                backplane.stop()
                raise
            self.state = STARTED

    def stop(self, timeout: float | None = None) -> None:
        """Stop: ``on_stop()``, then close every client with 1001 and wait.

        Waits up to ``timeout`` seconds (default: ``close_period`` plus one) in all for
        the handshakes in progress, ``on_stop``, the clients' closing handshakes and
        ``on_close`` calls, then stops the backplane (a Redis backplane waits
        for its threads). ``on_stop`` runs on a thread of its own: one still running
        at the timeout is logged (a WARNING) and the clients are closed with 1001 anyway.
        Thread-safe (serialized with :meth:`start`); blocks.
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
            self._run_on_stop(deadline)
            self._clients.close_all(1001, "Server shutting down")
            if not self._clients.wait_until_empty(deadline):
                self._log_stuck()
            self.endpoint.backplane.stop()
            self.state = STOPPED

    def _run_on_stop(self, deadline: float) -> None:
        """``on_stop()`` on a thread of its own, waited for until ``deadline`` at most."""
        on_stop = self.callbacks.on_stop

        def call() -> None:
            try:
                on_stop()
            except Exception:
                logger.exception("exception in on_stop")

        began = time.monotonic()
        thread = threading.Thread(target=call, name="syncaerys-on_stop", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            # The interpreter is shutting down (an atexit stop): Python 3.12 starts no thread
            # then. on_stop runs here, unbounded, rather than not at all.
            logger.info("on_stop runs on the stopping thread: no new thread can start at interpreter shutdown")
            call()
            return
        thread.join(max(0.0, deadline - began))
        if thread.is_alive():
            logger.warning(
                "on_stop has been running for %.1f s, the whole stop timeout: closing the clients with 1001 "
                "without waiting for it (return from on_stop sooner, or give stop() a longer timeout)",
                time.monotonic() - began,
            )

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

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response = self._counting(start_response)
        server = environ.get("syncaerys.server")
        if server is not None:
            server.attach(self)
        elif self.state == STOPPED and not self._stopped:
            self.start()
        rejection, compared = self._check(environ)
        if rejection is not None:
            logger.info(
                "handshake refused with %d: %s%s", rejection.status, rejection.detail or rejection.reason, compared
            )
            return _reject(rejection, start_response, environ)
        upgrade = _Upgrade(environ, start_response, self._clients)
        try:
            return self._handshake(upgrade)
        finally:
            upgrade.handshake_over()

    def _check(self, environ: WSGIEnvironment) -> tuple[Rejection | None, str]:
        """The request's checks, then admission: ``None`` when the handshake may go on (and is counted).

        With the rejection, what the log should add: the Origin and Host that the
        same-origin check compared.
        """
        compared = ""
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
                # (Under Django, its ALLOWED_HOSTS checked the Host already.)
                origin, host = environ.get("HTTP_ORIGIN"), environ.get("HTTP_HOST")
                rejection = check_host(host, self._allowed_hosts(environ), _bound_to_loopback(environ))
                if rejection is None:
                    rejection = check_origin(origin, self.options.allowed_origins, host)
                    compared = f" (Origin {origin!r}, Host {host!r})" if rejection is not None else ""
        if rejection is None and not self._admit_handshake():
            rejection = _SHUTTING_DOWN
        return rejection, compared

    def _allowed_hosts(self, environ: WSGIEnvironment) -> tuple[str, ...] | str | None:
        """``allowed_hosts``, except that the loopback default does not apply to a request through a proxy."""
        allowed = self.options.allowed_hosts
        if allowed == LOOPBACK_IF_LOCAL and _via_proxy(environ):
            return None
        return allowed

    def _counting(self, start_response: StartResponse) -> Any:
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

    def _handshake(self, upgrade: _Upgrade) -> Iterable[bytes]:
        """An admitted request: the socket, ``on_handshake``, the accept step, then the client's whole life."""
        environ = upgrade.environ
        try:
            upgrade.sock = find_socket(environ)
        except HostError as error:
            logger.error("cannot upgrade: %s", error)
            software = environ.get("SERVER_SOFTWARE") or "this WSGI server"
            return upgrade.reject(Rejection(error.status, f"{software} cannot upgrade to WebSocket"))
        response = Response(101)
        response.subprotocol = choose_subprotocol(environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL"), self.options.subprotocols)
        answered = self._on_handshake(upgrade, response)
        if answered is not None:
            return answered
        window_bits = self.options.compression_window_bits if self.options.compression else None
        outcome = accept(
            _EnvironHeaders(environ), response.status, response.subprotocol, response.headers.items(), window_bits
        )
        # This frame stays on the stack for the client's whole life: nothing of the
        # handshake that the client does not need is kept (about 1 KiB per client).
        del response
        if isinstance(outcome, Rejection):
            logger.error("%s", outcome.detail or outcome.reason)
            return upgrade.reject(outcome)
        upgrade.accepted = outcome
        del outcome
        return self._serve(upgrade)

    def _on_handshake(self, upgrade: _Upgrade, response: Response) -> Iterable[bytes] | None:
        """Call ``on_handshake``; the answer given if it denied the upgrade or failed, else ``None``.

        What it returned is kept in ``upgrade.handshake_data`` for ``on_open``.
        """
        environ = upgrade.environ
        # populate_request=False: werkzeug would keep the request in the environ, which lives as
        # long as the client (its host's frames hold it), about 0.5 KiB per client for nothing.
        request = environ.get(FRAMEWORK_REQUEST) or Request(environ, populate_request=False)
        route_args = environ.get(ROUTE_ARGS) or {}
        if frozenset(route_args) not in self._checked_arguments:
            # Mounted routes were checked at mount; this catches serve() from a view of the user's.
            try:
                self.check_route_arguments(request.path, route_args)
            except TypeError as error:
                logger.error("cannot call on_handshake: %s", error)
                return upgrade.reject(Rejection(500, "on_handshake cannot take the route arguments"))
            self._checked_arguments.add(frozenset(route_args))
        try:
            handshake_data = self.callbacks.on_handshake(request, response, **route_args)
        except HTTPException as error:  # flask.abort(403), werkzeug's exceptions: their response denies
            handshake_data = error.get_response(environ)
        except Exception:
            logger.exception("exception in on_handshake")
            return upgrade.reject(Rejection(500, "exception in on_handshake"))
        if isinstance(handshake_data, (WerkzeugResponse, Response)):
            return self._returned_response(handshake_data, environ, upgrade.start_response)
        if response.status >= 300:
            logger.info("handshake denied by on_handshake with %d (response.status)", response.status)
            upgrade.start_response(response.status_line, response.wsgi_headers())
            return [response.body]
        mistake = denial_mistake(handshake_data)
        if mistake is None and response.body and response.status == 101:
            mistake = (
                "on_handshake wrote a body (response.send) but left the status at 101, which has no body: "
                "set response.status to 300 or more to deny with it"
            )
        if mistake is not None:
            logger.error("%s", mistake)
            return upgrade.reject(Rejection(500, "on_handshake returned what looks like a denial"))
        upgrade.handshake_data = handshake_data
        return None

    def _returned_response(
        self, denial: WerkzeugResponse | Response, environ: WSGIEnvironment, start_response: StartResponse
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

    def _serve(self, upgrade: _Upgrade) -> Iterable[bytes]:
        """Register the client, write the 101, and run the client until it is gone.

        On this thread, or, under syncaerys's own server, on a thread of its own
        while this request returns (:mod:`syncaerys.serving.handoff`).
        """
        environ, sock, accepted = upgrade.environ, upgrade.sock, upgrade.accepted
        assert sock is not None and accepted is not None  # found and accepted by _handshake
        upgrade.accepted = None
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
        connection = Connection(
            self._context, transport, client_id, remote, accepted.subprotocol, path, accepted.deflate
        )
        early = take_buffered(environ, sock)
        if early:
            connection.received(early)
        # Registered before the 101 goes out, so that a client that has seen the 101
        # is known to stop() and to broadcasts; its queue holds what they send until
        # the 101 is written, so that no frame can overtake it.
        if not self._clients.add(connection):
            # stop() began while on_handshake ran: no 101 now, the client is told to come back.
            logger.info("handshake refused with 503: the server began stopping during on_handshake")
            return upgrade.reject(_SHUTTING_DOWN)
        try:
            transport.send_all(accepted.head, self.options.close_period)
        except OSError:
            logger.info("client went away before the 101 was written")
            for waiter in connection.queue.shutdown():
                waiter.message_failed(connection.id, ClientClosed("the client went away during the handshake"))
            self._clients.remove(connection)
            return self._finish_wsgi(sock, upgrade.start_response)
        self.stats.handshake("accepted")
        # This frame lives as long as the client: what only the handshake needed goes now.
        del accepted, early, remote, path
        connection.release()
        self.endpoint.backplane.wait_announced(connection.id)
        handoff = environ.get(HANDOFF)
        if isinstance(handoff, Handoff):
            count, handshake_data = upgrade.count, upgrade.handshake_data
            if handoff.start(lambda: self._run_client(connection, handshake_data, count, sock)):
                upgrade.handed_over()
                upgrade.start_response("101 Switching Protocols", [])
                return []
        connection.run(upgrade.handshake_data, upgrade.handshake_over)
        return self._finish_wsgi(sock, upgrade.start_response)

    @staticmethod
    def _run_client(connection: Connection, handshake_data: Any, count: _HandshakeCount, sock: socket.socket) -> None:
        """A handed-off client's life, on its own thread; the host closes the socket after it."""
        try:
            connection.run(handshake_data, count.end)
        finally:
            count.end()
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _finish_wsgi(sock: socket.socket, start_response: StartResponse) -> Iterable[bytes]:
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


class _Upgrade:
    """One admitted upgrade request, on the request's thread, from its checks to the end of its client.

    It carries what the handshake's steps hand on (the socket, what
    ``on_handshake`` returned) and ends the handshake in the registry exactly
    once: when the client is open (``on_open`` is next) or the request answered.
    """

    __slots__ = ("_count", "accepted", "environ", "handshake_data", "sock", "start_response")

    def __init__(self, environ: WSGIEnvironment, start_response: StartResponse, clients: ClientRegistry) -> None:
        self.environ = environ
        self.start_response = start_response
        self.sock: socket.socket | None = None
        #: What ``on_handshake`` returned, for ``on_open``.
        self.handshake_data: Any = None
        #: The accept step's answer (the 101's bytes...), from the handshake to the 101's write.
        self.accepted: Accept | None = None
        self._count: _HandshakeCount | None = _HandshakeCount(clients)

    @property
    def count(self) -> _HandshakeCount:
        """The handshake's place in the registry's count (until :meth:`handed_over`)."""
        assert self._count is not None
        return self._count

    def handed_over(self) -> None:
        """The client's own thread ends the handshake's count now, not this request."""
        self._count = None

    def handshake_over(self) -> None:
        """The handshake is over: the registry stops counting it (the first call only)."""
        if self._count is not None:
            self._count.end()

    def reject(self, rejection: Rejection) -> Iterable[bytes]:
        """Answer the request with ``rejection`` instead of upgrading it."""
        return _reject(rejection, self.start_response, self.environ)


class _HandshakeCount:
    """One admitted handshake in the registry's count, ended once (from one thread at a time)."""

    __slots__ = ("_clients", "_over")

    def __init__(self, clients: ClientRegistry) -> None:
        self._clients = clients
        self._over = False

    def end(self) -> None:
        """The handshake is over: refused, failed, or through ``on_open`` (the first call only)."""
        if not self._over:
            self._over = True
            self._clients.handshake_finished()


class _EnvironHeaders:
    """Header lookup straight from the environ (no parsing of anything else)."""

    def __init__(self, environ: WSGIEnvironment) -> None:
        self._environ = environ

    def get(self, key: str, default: None = None) -> str | None:
        value = self._environ.get("HTTP_" + key.upper().replace("-", "_"))
        return value if isinstance(value, str) else default


def _has_body(environ: WSGIEnvironment) -> bool:
    length = environ.get("CONTENT_LENGTH", "")
    return length not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ


_SHUTTING_DOWN = Rejection(503, "Server shutting down", [("Retry-After", "1")])


def _bound_to_loopback(environ: WSGIEnvironment) -> bool:
    """Whether the server that took the request listens on a loopback address (its ``SERVER_NAME``)."""
    server = environ.get("syncaerys.server")
    bound = getattr(server, "host", None) or environ.get("SERVER_NAME", "")
    name = host_name(f"[{bound}]" if ":" in str(bound) else str(bound))
    return name is not None and is_loopback_name(name)


#: Headers a proxy adds and a browser's WebSocket cannot send (its page sets no headers).
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_VIA")


def _via_proxy(environ: WSGIEnvironment) -> bool:
    """Whether a reverse proxy passed this request on: a DNS-rebound page talks to the server directly.

    A proxy of the Server's ``trusted_proxies``, or any request carrying a
    proxy's header (gunicorn or werkzeug behind nginx on the same machine).
    """
    if environ.get("syncaerys.proxy_address") or any(environ.get(key) for key in _PROXY_HEADERS):
        return True
    trusted = getattr(environ.get("syncaerys.server"), "trusted_proxies", None)
    return trusted is not None and bool(trusted.trusts(environ.get("REMOTE_ADDR", "")))


def _reject(rejection: Rejection, start_response: StartResponse, environ: WSGIEnvironment) -> Iterable[bytes]:
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


def _bound_werkzeug_drain(environ: WSGIEnvironment) -> None:
    """After the response, werkzeug's dev server reads what is left of the body with no time limit.

    A client that sent part of a body and went silent would hold the thread;
    with a timeout on the socket, that read ends after a second of silence
    and werkzeug drops the connection (our own server bounds it itself).
    """
    try:
        find_socket(environ).settimeout(_FOREIGN_DRAIN_TIMEOUT)
    except (RuntimeError, OSError):
        pass
