"""Router: Aerys-style routes on werkzeug's routing, as a WSGI application.

``Router().get("/room/<name>", websocket(Chat())).get("/", index)``: paths use
werkzeug's rule syntax, and the route arguments reach the responder (and a
gateway's ``on_handshake``) as keyword arguments. A path that matches with the
wrong method gets 405 with ``Allow``; no match gets 404 (or, inside a
:class:`~syncaerys.Host` chain, lets the next responder try).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound
from werkzeug.routing import Map
from werkzeug.routing import Rule

from .gateway import Gateway
from .responders import AerysResponder
from .responders import GatewayResponder
from .responders import Responder
from .responders import WsgiResponder
from .responders import is_wsgi_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["Router", "as_responder", "rule_arguments"]


def rule_arguments(path: str) -> set[str]:
    """The variable names of a werkzeug rule: ``/room/<int:n>/<name>`` -> ``{"n", "name"}``.

    Thread-safe; never blocks.
    """
    rule = Rule(path)
    Map([rule])  # binding parses the rule
    return set(rule.arguments)


class Router:
    """Routes by method and path to responders.

    A responder is a gateway from :func:`~syncaerys.websocket`, an Aerys-style
    ``def view(request, response, **route_args)`` (which may also return a
    werkzeug ``Response``), or any WSGI application.

    Thread model: routes are added under a lock, from any thread, but before the router serves (matching does
    not take the lock); serving is thread-safe, each request in its own thread.
    """

    def __init__(self) -> None:
        self._map = Map(strict_slashes=False, merge_slashes=False)
        self._responders: list[Responder] = []
        # Guards route registration; matching reads a fully built map.
        self._lock = threading.Lock()

    def route(self, method: str, path: str, responder: Any) -> Router:
        """Route ``method`` requests for ``path`` to ``responder``; returns the router.

        Thread-safe; never blocks. Add routes before the router serves requests.
        """
        if not method:
            raise ValueError("a route needs a method")
        wrapped = as_responder(responder)
        wrapped.check_route(path, rule_arguments(path))
        with self._lock:
            index = len(self._responders)
            self._responders.append(wrapped)
            methods = [method.upper()]
            self._map.add(Rule(path, methods=methods, endpoint=index))
        return self

    def get(self, path: str, responder: Any) -> Router:
        """Route ``GET`` (and ``HEAD``) requests for ``path``. As :meth:`route`: thread-safe; never blocks."""
        return self.route("GET", path, responder)

    def post(self, path: str, responder: Any) -> Router:
        """Route ``POST`` requests for ``path``. As :meth:`route`: thread-safe; never blocks."""
        return self.route("POST", path, responder)

    def gateways(self) -> list[Gateway]:
        """The websocket gateways routed here (started with the server). Thread-safe; never blocks."""
        return [g for r in self._responders for g in r.gateways()]

    def respond(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes] | None:
        """Serve the request, or return ``None`` when no route matches its path.

        Thread-safe (one call per request, each in its thread); blocks as long as the matched responder: a
        websocket's request until its client is gone.
        """
        adapter = self._map.bind_to_environ(environ)
        try:
            # websocket=False: werkzeug would otherwise only match Rule(websocket=True)
            # for upgrade requests; gateways make their own upgrade checks (426, ...).
            index, arguments = adapter.match(websocket=False)
        except NotFound:
            return None
        except HTTPException as error:  # 405 with Allow, or a redirect to the canonical path
            return error.get_response(environ)(environ, start_response)
        responder: Responder = self._responders[int(index)]
        return responder.respond(environ, start_response, dict(arguments))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """WSGI: serve the request; 404 when no route matches. Thread-safe; blocks as :meth:`respond` does."""
        result = self.respond(environ, start_response)
        if result is None:
            return NotFound().get_response(environ)(environ, start_response)
        return result


def as_responder(obj: Any) -> Responder:
    """Wrap any accepted kind of responder (see :mod:`syncaerys.responders`).

    Here rather than in :mod:`syncaerys.responders`: a Router is one of the
    kinds, and a Router wraps its routes' responders with this function.

    Thread-safe; never blocks.
    """
    if isinstance(obj, Gateway):
        return GatewayResponder(obj)
    if isinstance(obj, Router):
        return _RouterResponder(obj)
    if not callable(obj):
        raise TypeError(f"not a responder: {obj!r}")
    if is_wsgi_app(obj):
        return WsgiResponder(obj)
    return AerysResponder(obj)


class _RouterResponder:
    def __init__(self, router: Router) -> None:
        self.router = router

    def respond(
        self, environ: WSGIEnvironment, start_response: StartResponse, route_args: dict[str, Any]
    ) -> Iterable[bytes] | None:
        return self.router.respond(environ, start_response)

    def gateways(self) -> list[Gateway]:
        return self.router.gateways()

    def check_route(self, rule: str, arguments: set[str]) -> None:
        pass  # a router takes no route arguments: its own routes are checked when added
