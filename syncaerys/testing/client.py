"""The test client: a WebSocket client on a plain socket with wsproto, and its errors.

It speaks the protocol independently of the server's own code (no asyncio, no
``websockets`` library). One background thread per client does all the socket
I/O: it answers the server's pings at once (also while the test is busy
elsewhere), answers the server's close frame, and queues incoming messages for
:meth:`Client.receive`. Every blocking call of the client takes a ``timeout``
(the client's ``timeout`` by default), so a test that waits for something that
never comes fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import itertools
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable
from collections.abc import Mapping
from urllib.parse import urlsplit

from werkzeug.datastructures import Headers
from wsproto import ConnectionType
from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection
from wsproto.events import BytesMessage
from wsproto.events import CloseConnection
from wsproto.events import Event
from wsproto.events import Message
from wsproto.events import Ping
from wsproto.events import Pong
from wsproto.events import RejectConnection
from wsproto.events import RejectData
from wsproto.events import Request
from wsproto.events import TextMessage
from wsproto.utilities import ProtocolError as WsprotoError

from ..server import Server
from ..types import MessageData

__all__ = [
    "DEFAULT_TIMEOUT",
    "Client",
    "ConnectionClosed",
    "HandshakeError",
    "HandshakeRejected",
    "WebSocketClientError",
    "connect",
]

#: The default bound, in seconds, of every blocking call of :class:`Client`.
DEFAULT_TIMEOUT = 5.0

_READ_SIZE = 1 << 16
_WRITE_CHUNK = 1 << 18


# -- errors


class WebSocketClientError(Exception):
    """Base class of the errors raised by the test client."""


class HandshakeError(WebSocketClientError):
    """The opening handshake failed: no valid HTTP response, a bad 101, or a TCP drop."""


class HandshakeRejected(HandshakeError):
    """The server answered the upgrade with a normal HTTP response instead of 101.

    :attr:`status`, :attr:`headers` (case-insensitive) and :attr:`body` are
    what the server sent, e.g. 401 with ``WWW-Authenticate`` from
    ``on_handshake``, 404 from a Router, 426 from the protocol checks.
    """

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        super().__init__(f"handshake rejected with HTTP {status}")
        #: The HTTP status code.
        self.status = status
        #: The response headers.
        self.headers = headers
        #: The response body.
        self.body = body

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")


class ConnectionClosed(WebSocketClientError):
    """The connection is closed or closing: nothing more can be received or sent.

    Raised by :meth:`Client.receive` once every message that arrived before
    the close was received, and by :meth:`Client.send` after the close.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        #: The close code (see :attr:`Client.close_code`).
        self.code = code
        #: The close reason.
        self.reason = reason


# -- the client


class Client:
    """A WebSocket client connected to a server; made by :func:`connect`.

    Thread model: one background thread per client does all the socket I/O
    (it is what answers pings); the methods may be called from the test's
    thread (or any one thread at a time). Every blocking method takes a
    ``timeout`` in seconds; ``None`` means the client's :attr:`timeout`.

    Use it as a context manager: on exit it closes with 1000 if still open.
    """

    def __init__(
        self,
        sock: socket.socket,
        host: str,
        path: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        subprotocols: Iterable[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        #: The default bound of every blocking call, in seconds.
        self.timeout = timeout
        #: The subprotocol the server accepted, or ``None``.
        self.subprotocol: str | None = None
        #: The headers of the server's 101 response (without the WebSocket ones).
        self.response_headers = Headers()
        #: How many pings the server sent (each was answered with a pong at once).
        self.pings_received = 0
        self._sock = sock
        self._ws = WSConnection(ConnectionType.CLIENT)
        # Guards everything below and the wsproto state; the I/O thread waits on nothing under it.
        self._cond = threading.Condition()
        self._messages: deque[MessageData] = deque()
        self._parts: list[MessageData] = []
        self._pongs: set[bytes] = set()
        self._ping_ids = itertools.count(1)
        self._out = bytearray()
        self._queued = 0  # bytes ever queued for writing
        self._written = 0  # bytes ever written
        self._close_code: int | None = None
        self._close_reason = ""
        self._close_received = False  # a close frame came in (or the server broke the protocol)
        self._shutdown_when_flushed = False
        self._abort = False
        self._done = False
        self._handshake(host, path, list(headers), list(subprotocols))
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        sock.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="syncaerys-testing-client", daemon=True)
        self._thread.start()

    # -- handshake (in the caller's thread, before the I/O thread starts)

    def _handshake(self, host: str, path: str, headers: list[tuple[str, str]], subprotocols: list[str]) -> None:
        sock = self._sock
        sock.settimeout(self.timeout)
        request = Request(
            host=host,
            target=path,
            extra_headers=[(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            subprotocols=subprotocols,
        )
        try:
            sock.sendall(self._ws.send(request))
            self._await_response(sock)
        except WsprotoError as error:
            sock.close()
            raise HandshakeError(f"invalid handshake response: {error}") from None
        except BaseException:
            sock.close()
            raise

    def _await_response(self, sock: socket.socket) -> None:
        """Read until the 101 (then return) or a whole refusal (then raise :class:`HandshakeRejected`)."""
        rejected: RejectConnection | None = None
        body = bytearray()
        while True:
            try:
                data = sock.recv(_READ_SIZE)
            except TimeoutError:
                raise HandshakeError(f"no handshake response within {self.timeout}s") from None
            self._ws.receive_data(data or None)
            for event in self._ws.events():
                if isinstance(event, AcceptConnection):
                    self._accepted(event)
                    return
                rejected = self._refused(event, rejected, body)
            if not data:
                if rejected is not None:
                    raise self._rejection(rejected, body)
                raise HandshakeError("the server closed the connection during the handshake")

    def _accepted(self, event: AcceptConnection) -> None:
        self.subprotocol = event.subprotocol
        for name, value in event.extra_headers:
            self.response_headers.add(name.decode("latin-1"), value.decode("latin-1"))
        # Frames that came with the 101 (a greeting, a ping).
        with self._cond:
            self._process_events()

    def _refused(self, event: Event, rejected: RejectConnection | None, body: bytearray) -> RejectConnection | None:
        """Follow a refusal: the refusal seen so far; raises :class:`HandshakeRejected` once its body is whole."""
        if isinstance(event, RejectConnection):
            if not event.has_body:
                raise self._rejection(event, body)
            return event
        if isinstance(event, RejectData):
            body += event.data
            if event.body_finished and rejected is not None:
                raise self._rejection(rejected, body)
        return rejected

    @staticmethod
    def _rejection(event: RejectConnection, body: bytearray) -> HandshakeRejected:
        headers = Headers()
        for name, value in event.headers:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        return HandshakeRejected(event.status_code, headers, bytes(body))

    # -- the I/O thread

    def _run(self) -> None:
        sock = self._sock
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        selector.register(sock, selectors.EVENT_READ)
        writing = False
        chunk = b""  # being written; retried unchanged (OpenSSL requires it)
        try:
            while True:
                with self._cond:
                    if self._abort:
                        break
                    if not chunk and self._out:
                        chunk = bytes(self._out[:_WRITE_CHUNK])
                        del self._out[:_WRITE_CHUNK]
                    if not chunk and self._shutdown_when_flushed:
                        break
                if bool(chunk) != writing:
                    writing = bool(chunk)
                    events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
                    selector.modify(sock, events)
                for key, mask in selector.select():
                    if key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                        continue
                    if mask & selectors.EVENT_READ and not self._read_some():
                        return
                    if mask & selectors.EVENT_WRITE and chunk:
                        try:
                            sent = sock.send(chunk)
                        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                            sent = 0
                        chunk = chunk[sent:]
                        with self._cond:
                            self._written += sent
                            self._cond.notify_all()
        except OSError:
            pass  # the connection broke; reported as 1006 below
        finally:
            selector.close()
            self._finish()

    def _read_some(self) -> bool:
        """Read what is there and process it; ``False`` at EOF."""
        sock = self._sock
        while True:
            try:
                data = sock.recv(_READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return True
            except OSError:
                return False
            if not data:
                return False
            with self._cond:
                if self._ws.state is not ConnectionState.CLOSED:
                    self._ws.receive_data(data)
                    self._process_events()
            # TLS may hold decrypted bytes that select() cannot see.
            if not isinstance(sock, ssl.SSLSocket) or not sock.pending():
                return True

    def _process_events(self) -> None:
        """Handle wsproto's events; called with ``_cond`` held."""
        ws = self._ws
        for event in ws.events():
            if isinstance(event, Message):
                self._parts.append(event.data)
                if event.message_finished:
                    parts = self._parts
                    self._parts = []
                    message: MessageData = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)  # type: ignore[arg-type]
                    self._messages.append(message)
            elif isinstance(event, Ping):
                self.pings_received += 1
                if ws.state is ConnectionState.OPEN:
                    self._queue(ws.send(event.response()))
            elif isinstance(event, Pong):
                self._pongs.add(bytes(event.payload))
            elif isinstance(event, CloseConnection):
                self._on_close_frame(event)
        self._cond.notify_all()

    def _on_close_frame(self, event: CloseConnection) -> None:
        ws = self._ws
        if ws.state is ConnectionState.REMOTE_CLOSING:
            # The server started the closing handshake: echo its code.
            self._queue(ws.send(event.response()))
        elif ws.state is ConnectionState.OPEN:
            # wsproto reports a protocol error by the server as a close event:
            # fail the connection with that code.
            self._queue(ws.send(CloseConnection(event.code, event.reason)))
            self._shutdown_when_flushed = True
        elif ws.state is ConnectionState.LOCAL_CLOSING:
            self._shutdown_when_flushed = True  # protocol error after our close
        if self._close_code is None:
            self._close_code = int(event.code)
            self._close_reason = event.reason or ""
        self._close_received = True

    def _queue(self, data: bytes) -> int:
        """Queue bytes for the I/O thread; returns the write offset to wait for. ``_cond`` held."""
        self._out += data
        self._queued += len(data)
        return self._queued

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _finish(self) -> None:
        with self._cond:
            if self._close_code is None:
                self._close_code = 1006
                self._close_reason = ""
            self._done = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        self._sock.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the public API

    @property
    def closed(self) -> bool:
        """Whether the connection is over (TCP closed). Thread-safe; never blocks."""
        with self._cond:
            return self._done

    @property
    def close_code(self) -> int | None:
        """The close code, once the server's close frame arrived or the connection ended.

        The code of the server's close frame (its echo of ours when this
        client closed first); 1005 when the frame had no code; 1006 when TCP
        closed without a close frame; when the server broke the protocol, the
        code this client failed the connection with (1002, 1007, ...).
        ``None`` while the connection is open.

        Thread-safe; never blocks.
        """
        with self._cond:
            return self._close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason that goes with :attr:`close_code` (``None`` while open). Thread-safe; never blocks."""
        with self._cond:
            return None if self._close_code is None else self._close_reason

    def _bound(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def _closed_error(self) -> ConnectionClosed:
        return ConnectionClosed(1006 if self._close_code is None else self._close_code, self._close_reason)

    def _send_events(self, events: list[Event], timeout: float | None) -> None:
        with self._cond:
            if self._done or self._ws.state is not ConnectionState.OPEN:
                raise self._closed_error()
            offset = 0
            for event in events:
                offset = self._queue(self._ws.send(event))
        self._wake()
        self._wait_written(offset, timeout)

    def _wait_written(self, offset: int, timeout: float | None) -> None:
        bound = self._bound(timeout)
        with self._cond:
            if not self._cond.wait_for(lambda: self._written >= offset or self._done, bound):
                raise TimeoutError(f"the message was not written within {bound}s (is the server reading?)")
            if self._written < offset:
                raise self._closed_error()

    def send(self, data: str | bytes | bytearray | memoryview, timeout: float | None = None) -> None:
        """Send a message (``str``: text, bytes-like: binary) and wait until it is written.

        Raises :class:`ConnectionClosed` once the connection is closing, and
        :class:`TimeoutError` when the socket does not take it in time.

        Call from one thread at a time; blocks until the message is written, at most ``timeout``.
        """
        payload: str | bytes = data if isinstance(data, str) else bytes(data)
        message: Event = TextMessage(data=payload) if isinstance(payload, str) else BytesMessage(data=payload)
        self._send_events([message], timeout)

    def send_fragments(self, fragments: Iterable[str | bytes], timeout: float | None = None) -> None:
        """Send one message as one frame per fragment (all ``str`` or all bytes).

        The server sees it as a single message whose chunks arrive frame by
        frame (``message.read()`` returns them one by one as they arrive).

        Call from one thread at a time; blocks until the message is written, at most ``timeout``.
        """
        items = [item if isinstance(item, str) else bytes(item) for item in fragments]
        if not items:
            raise ValueError("a message needs at least one fragment")
        text = isinstance(items[0], str)
        if any(isinstance(item, str) != text for item in items):
            raise TypeError("fragments of one message must be all str or all bytes")
        last = len(items) - 1
        events: list[Event] = [
            TextMessage(data=item, message_finished=i == last)
            if isinstance(item, str)
            else BytesMessage(data=item, message_finished=i == last)
            for i, item in enumerate(items)
        ]
        self._send_events(events, timeout)

    def receive(self, timeout: float | None = None) -> MessageData:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Messages that arrived before the close are still returned; after them
        :class:`ConnectionClosed` is raised. :class:`TimeoutError` when none
        arrives in time (the client stays usable).

        Call from one thread at a time; blocks until a message arrives, at most ``timeout``.
        """
        bound = self._bound(timeout)
        with self._cond:
            self._cond.wait_for(lambda: self._messages or self._close_received or self._done, bound)
            if self._messages:
                return self._messages.popleft()
            if self._close_received or self._done:
                raise self._closed_error()
        raise TimeoutError(f"no message within {bound}s")

    def receive_text(self, timeout: float | None = None) -> str:
        """The next message, which must be text (:class:`TypeError` if binary).

        Call from one thread at a time; blocks as :meth:`receive`, at most ``timeout``.
        """
        message = self.receive(timeout)
        if not isinstance(message, str):
            raise TypeError(f"expected a text message, got binary {message[:40]!r}")
        return message

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The next message, which must be binary (:class:`TypeError` if text).

        Call from one thread at a time; blocks as :meth:`receive`, at most ``timeout``.
        """
        message = self.receive(timeout)
        if not isinstance(message, bytes):
            raise TypeError(f"expected a binary message, got text {message[:40]!r}")
        return message

    def ping(self, payload: bytes | None = None, timeout: float | None = None) -> float:
        """Send a ping, wait for its pong and return the round-trip time in seconds.

        ``payload`` defaults to a fresh unique one. Raises :class:`TimeoutError`
        when no pong comes back in time, :class:`ConnectionClosed` when the
        connection closes first.

        Call from one thread at a time; blocks until the pong, at most ``timeout``.
        """
        data = str(next(self._ping_ids)).encode() if payload is None else bytes(payload)
        bound = self._bound(timeout)
        started = time.monotonic()
        self._send_events([Ping(payload=data)], bound)
        with self._cond:
            if not self._cond.wait_for(lambda: data in self._pongs or self._done, bound):
                raise TimeoutError(f"no pong within {bound}s")
            if data not in self._pongs:
                raise self._closed_error()
            self._pongs.discard(data)
        return time.monotonic() - started

    def close(self, code: int = 1000, reason: str = "", timeout: float | None = None) -> None:
        """Start the closing handshake and wait until the server closed TCP.

        Returns at once if the connection is already over. When the server does
        not finish the closing handshake in time, the TCP connection is dropped
        (and :attr:`close_code` is 1006). Codes the RFC reserves for local use
        (1005, 1006, 1015) are sent as 1000 by wsproto; send raw frames to test
        how a server treats them.

        Call from one thread at a time; blocks until TCP is closed, at most ``timeout``.
        """
        with self._cond:
            if not self._done and self._ws.state is ConnectionState.OPEN:
                self._queue(self._ws.send(CloseConnection(code=code, reason=reason)))
        self._wake()
        if not self.wait_closed(timeout, raise_timeout=False):
            self.abort()

    def wait_closed(self, timeout: float | None = None, *, raise_timeout: bool = True) -> bool:
        """Wait until the connection is over (the server closed it, or :meth:`close`).

        Returns whether it is over; by default raises :class:`TimeoutError`
        instead of returning ``False``.

        Thread-safe; blocks until the connection is over, at most ``timeout``.
        """
        bound = self._bound(timeout)
        with self._cond:
            done = self._cond.wait_for(lambda: self._done, bound)
        if done:
            self._thread.join(bound)
        elif raise_timeout:
            raise TimeoutError(f"the connection was still open after {bound}s")
        return done

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (the server sees 1006).

        Thread-safe; blocks until the I/O thread ended, at most the client's :attr:`timeout`.
        """
        with self._cond:
            if self._done:
                return
            self._abort = True
        self._wake()
        self._thread.join(self.timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._done else self._ws.state.name
        return f"<Client {state} close_code={self._close_code}>"


def connect(
    target: Server | str,
    path: str = "/",
    *,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    subprotocols: Iterable[str] = (),
    origin: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Client:
    """Open a WebSocket connection to a running server and return the :class:`Client`.

    :param target: a :class:`~syncaerys.Server` (as yielded by :func:`serve`),
        or a ``ws://``/``wss://`` URL (then ``path`` is ignored; the URL's path
        and query are used).
    :param path: the request target, query string included (``"/chat?name=ann"``).
    :param headers: extra request headers (a mapping, or pairs for repeated names),
        e.g. ``{"Cookie": "token=..."}`` or ``{"Authorization": "Bearer ..."}``.
    :param subprotocols: offered in ``Sec-WebSocket-Protocol``; read the
        accepted one from :attr:`Client.subprotocol`.
    :param origin: sent as the ``Origin`` header.
    :param ssl_context: for ``wss``; by default a context that trusts the
        server's certificate without checking it (it is the test's own
        in-process server).
    :param timeout: for the connection and handshake, and the default bound of
        every blocking call of the client.
    :raises HandshakeRejected: the server answered with an HTTP status other than 101.
    :raises HandshakeError: no valid handshake response.

    Thread-safe (each call opens its own connection); blocks for the TCP connection and the handshake, at most
    ``timeout``.
    """
    if isinstance(target, Server):
        host, port, secure = target.host, target.port, target.ssl_context is not None
    else:
        parts = urlsplit(target)
        if parts.scheme not in ("ws", "wss") or parts.hostname is None:
            raise ValueError(f"not a ws:// or wss:// URL: {target!r}")
        secure = parts.scheme == "wss"
        host, port = parts.hostname, parts.port or (443 if secure else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
    if origin is not None:
        pairs.append(("Origin", origin))
    sock = socket.create_connection((host, port), timeout=timeout)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if secure:
        if ssl_context is None:
            ssl_context = ssl.create_default_context()
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        try:
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
    host_header = f"[{host}]" if ":" in host else host
    return Client(sock, f"{host_header}:{port}", path, headers=pairs, subprotocols=subprotocols, timeout=timeout)
