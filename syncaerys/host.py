"""Host: where to listen, with what TLS, and the chain of responders (Aerys's Host)."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

from werkzeug.exceptions import NotFound

from .gateway import Gateway
from .responders import Responder
from .responders import WsgiResponder
from .router import as_responder

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["Host"]

DEFAULT_ADDRESS = ("127.0.0.1", 1337)

_IT_WORKS = b"<!doctype html><title>It works!</title><h1>It works!</h1><p>syncaerys is running.</p>\n"


class Host:
    """An address (or several), optional TLS and a chain of responders.

    ``Host().expose("127.0.0.1", 1337).use(router).use(flask_app)``: each
    request goes to the responders in order until one responds (a Router that
    matches no route, an Aerys-style responder that leaves the response
    untouched, or a WSGI app that answers 404 all let the next one try); when
    none does, the client gets 404. A Host with no responder answers
    "It works!". Without ``expose`` it listens on 127.0.0.1:1337.

    Thread model: build it in one thread before serving it (:meth:`expose`, :meth:`encrypt` and :meth:`use`
    are not thread-safe); serving it is thread-safe, each request in its own thread.
    """

    def __init__(self) -> None:
        self._addresses: list[tuple[str, int]] = []
        self._responders: list[Responder] = []
        #: The TLS context, once :meth:`encrypt` was called.
        self.ssl_context: ssl.SSLContext | None = None

    def expose(self, address: str = "127.0.0.1", port: int = 1337) -> Host:
        """Listen on ``address:port`` (IPv4 or IPv6; ``port=0`` picks a free port).

        Not thread-safe: configure the host before serving it; never blocks.
        """
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port!r}")
        self._addresses.append((address, port))
        return self

    def encrypt(self, certificate: ssl.SSLContext | str, key: str | None = None) -> Host:
        """Serve TLS (``wss://``) from an ``ssl.SSLContext`` or certificate and key files.

        Not thread-safe: configure the host before serving it; blocks only to read the files.
        """
        if isinstance(certificate, ssl.SSLContext):
            self.ssl_context = certificate
        else:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(certificate, key)
            self.ssl_context = context
        return self

    def use(self, responder: Any) -> Host:
        """Append a responder to the chain: a Router, a gateway, a WSGI app or an Aerys-style view.

        Not thread-safe: configure the host before serving it; never blocks.
        """
        self._responders.append(as_responder(responder))
        return self

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where the host listens (127.0.0.1:1337 unless :meth:`expose` was called).

        Thread-safe once configured; never blocks.
        """
        return list(self._addresses) or [DEFAULT_ADDRESS]

    def gateways(self) -> list[Gateway]:
        """The websocket gateways reachable from the chain (started with the server).

        Thread-safe once configured; never blocks.
        """
        return [g for r in self._responders for g in r.gateways()]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """WSGI: run the chain.

        Thread-safe (one call per request, each in its thread); blocks as long as the responder that answers:
        a websocket's request until its client is gone.
        """
        if not self._responders:
            start_response(
                "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(_IT_WORKS)))]
            )
            return [_IT_WORKS]
        last = len(self._responders) - 1
        for index, responder in enumerate(self._responders):
            if isinstance(responder, WsgiResponder) and index < last:
                result = responder.respond_or_pass(environ, start_response)
            else:
                result = responder.respond(environ, start_response, {})
            if result is not None:
                return result
        return NotFound().get_response(environ)(environ, start_response)
