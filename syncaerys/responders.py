"""The kinds of responder a Router or Host accepts, behind one interface.

* a gateway from :func:`~syncaerys.websocket`;
* a :class:`~syncaerys.Router`;
* a WSGI application: an object with ``wsgi_app`` (Flask), or a callable whose
  first two parameters are named ``environ`` and ``start_response``;
* anything else callable is an Aerys-style responder,
  ``view(request, response, **route_args)``: it fills in ``response``
  (``status``, ``headers``, ``set_cookie``, ``send``), or returns a werkzeug
  ``Response`` (any WSGI application), ``str`` or ``bytes``.

``respond()`` returns ``None`` when the responder did not respond, so that a
:class:`~syncaerys.Host` can try the next one (Aerys's chain).

The wrapper of a Router and :func:`~syncaerys.router.as_responder`, which picks
the wrapper for an object, are in :mod:`syncaerys.router`: a Router wraps its
routes' responders, so this module must not need the Router class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from werkzeug.wrappers import Request

from .gateway import Gateway
from .response import Response
from .websocket import check_route_arguments

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["Responder", "WsgiResponder", "AerysResponder", "GatewayResponder", "is_wsgi_app"]


class Responder(Protocol):
    """What a Router or a Host calls, whatever kind of responder it was given.

    Its methods are called from the requests' threads, several at once:
    implementations must be thread-safe.
    """

    def respond(
        self, environ: WSGIEnvironment, start_response: StartResponse, route_args: dict[str, Any]
    ) -> Iterable[bytes] | None:
        """Serve the request, or return ``None`` when this responder did not respond.

        Called from each request's thread, concurrently; may block (a gateway's
        call lasts as long as its client).
        """

    def gateways(self) -> list[Gateway]:
        """The websocket gateways reachable through this responder. Thread-safe; never blocks."""

    def check_route(self, rule: str, arguments: set[str]) -> None:
        """Raise :class:`TypeError` if this responder cannot take ``rule``'s arguments.

        Called when the route is added, from the thread that adds it; never blocks.
        """


def is_wsgi_app(obj: object) -> bool:
    """Whether ``obj`` looks like a WSGI application rather than an Aerys responder. Thread-safe; never blocks."""
    if hasattr(obj, "wsgi_app"):
        return True
    try:
        parameters = list(inspect.signature(obj).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return parameters[:2] == ["environ", "start_response"]


class GatewayResponder:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def respond(
        self, environ: WSGIEnvironment, start_response: StartResponse, route_args: dict[str, Any]
    ) -> Iterable[bytes]:
        environ["syncaerys.route_args"] = route_args
        return self.gateway(environ, start_response)

    def gateways(self) -> list[Gateway]:
        return [self.gateway]

    def check_route(self, rule: str, arguments: set[str]) -> None:
        self.gateway.check_route_arguments(rule, arguments)


class WsgiResponder:
    """A WSGI app; in a chain, its 404 lets the next responder try."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def respond(
        self, environ: WSGIEnvironment, start_response: StartResponse, route_args: dict[str, Any]
    ) -> Iterable[bytes]:
        if route_args:
            environ["wsgiorg.routing_args"] = ((), route_args)
        return self.app(environ, start_response)

    def respond_or_pass(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes] | None:
        """Serve, or return ``None`` (discarding the response) if the app answered 404."""
        not_found = False

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
            nonlocal not_found
            if status.startswith("404"):
                not_found = True
                return lambda data: None
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        iterator = iter(result)
        # start_response may be deferred to the first item (generators).
        first = next(iterator, None)
        if not_found:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            return None
        return _Prepended(first, iterator, result)

    def gateways(self) -> list[Gateway]:
        found = getattr(self.app, "gateways", None)  # a Host used inside a Host
        if not callable(found):
            extensions = getattr(self.app, "extensions", None)  # a Flask app with syncaerys.flask
            if isinstance(extensions, dict):
                found = getattr(extensions.get("syncaerys"), "gateways", None)
        return list(found()) if callable(found) else []

    def check_route(self, rule: str, arguments: set[str]) -> None:
        pass  # they reach a WSGI app in the environ (wsgiorg.routing_args), not as arguments


class _Prepended:
    """A WSGI iterable whose first item was already taken out."""

    def __init__(self, first: bytes | None, rest: Iterator[bytes], original: Iterable[bytes]) -> None:
        self._first = first
        self._rest = rest
        self._original = original

    def __iter__(self) -> Iterator[bytes]:
        if self._first is not None:
            yield self._first
        yield from self._rest

    def close(self) -> None:
        close = getattr(self._original, "close", None)
        if close is not None:
            close()


class AerysResponder:
    def __init__(self, view: Callable[..., Any]) -> None:
        self.view = view

    def respond(
        self, environ: WSGIEnvironment, start_response: StartResponse, route_args: dict[str, Any]
    ) -> Iterable[bytes] | None:
        request = Request(environ)
        response = Response()
        result = self.view(request, response, **route_args)
        if isinstance(result, (str, bytes)):
            response.send(result)
        elif result is not None:
            if not callable(result):
                raise TypeError(f"responder {self.view!r} returned {type(result).__name__}")
            return result(environ, start_response)  # type: ignore[no-any-return]
        if not response.started:
            return None
        return response(environ, start_response)

    def gateways(self) -> list[Gateway]:
        return []

    def check_route(self, rule: str, arguments: set[str]) -> None:
        check_route_arguments(self.view, arguments, rule, f"responder {getattr(self.view, '__qualname__', self.view)}")
