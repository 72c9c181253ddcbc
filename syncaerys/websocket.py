"""The Websocket base class: the eight callbacks an application may implement."""

from __future__ import annotations

import difflib
import inspect
import logging
import re
import weakref
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from .exceptions import NotStartedError

if TYPE_CHECKING:
    from .endpoint import Endpoint
    from .message import Message
    from .response import Response

__all__ = ["Websocket", "Callbacks", "check_route_arguments", "note_started", "PORTING_GUIDE"]

# The gateway's logger: these warnings come when a handler is wrapped (mounted).
_log = logging.getLogger("syncaerys.gateway")


class _EndpointNotSet(NotStartedError, AttributeError):
    """``handler.endpoint`` read before ``on_start`` stored it (an AttributeError too, for ``hasattr``)."""


class _UnsetEndpoint:
    """Until ``on_start`` assigns ``self.endpoint``, reading it explains why it is missing.

    A non-data descriptor: the assignment in ``on_start`` goes to the
    instance and hides it.
    """

    def __get__(self, handler: object, owner: type | None = None) -> Any:
        if handler is None:
            return self
        name = type(handler).__name__
        if _has_started(handler):
            raise _EndpointNotSet(
                f"{name}.endpoint is not set: on_start(endpoint) ran but did not keep the endpoint. Add "
                f"self.endpoint = endpoint to {name}.on_start (or use gateway.endpoint from outside the handler)"
            )
        raise _EndpointNotSet(
            f"{name}.endpoint is not set: on_start(endpoint) has not run yet, so the gateway has not started "
            "(it starts with syncaerys.run() or Server, at a Flask app's first request, or with gateway.start()). "
            "Code outside the handler can use gateway.endpoint, which exists from the start"
        )


# The handlers whose on_start has run (told by the gateway), so that a missing endpoint is explained right.
_started_handlers: weakref.WeakSet[object] = weakref.WeakSet()


def note_started(handler: object) -> None:
    """Record that ``handler.on_start`` has run (the gateway calls it). Thread-safe; never blocks."""
    try:
        _started_handlers.add(handler)
    except TypeError:  # not hashable or not weakly referenceable: the generic message stays
        pass


def _has_started(handler: object) -> bool:
    try:
        return handler in _started_handlers
    except TypeError:
        return False


class Websocket:
    """Subclass it and override what you need; every method defaults to a no-op.

    Methods may also be spelled as in Aerys (``onStart``, ``onHandshake``,
    ``onOpen``, ``onData``, ``onClose``, ``onStop``) so that an Aerys app ports
    line by line. All of them are plain blocking methods:

    * ``on_start(endpoint)``: once, before the first client is accepted.
    * ``on_handshake(request, response, **route_args)``: after the protocol
      checks passed; set ``response.status`` to 300 or more to deny, or return
      a response object (werkzeug's, Flask's or :class:`~syncaerys.Response`)
      with such a status. Any other return value reaches ``on_open``. Declare
      the route's arguments as parameters (``name`` for ``/room/<name>``).
    * ``on_open(client_id, handshake_data)``: after the 101 was written, on the
      client's thread.
    * ``on_data(client_id, message)``: at the first frame of each message, on
      the client's thread, one message at a time and in order. The message
      can be read only there, during that call: to handle a client's
      messages concurrently, read it and hand the value to your own pool.
    * ``on_close(client_id, code, reason)``: exactly once per opened client.
    * ``on_stop()``: once, when the server stops, before clients are closed
      with 1001.

    With a cluster backplane, two more optional methods tell when operations
    on other processes' clients start failing and work again (resync what you
    need then): ``on_backplane_down()`` and ``on_backplane_up()``. They run on
    one of the backplane's threads (its listener or its writer): keep them short.
    """

    if TYPE_CHECKING:
        #: Where ``on_start`` conventionally keeps the endpoint (``self.endpoint = endpoint``).
        endpoint: Endpoint
    else:
        endpoint = _UnsetEndpoint()

    def on_start(self, endpoint: Endpoint) -> None:
        """Called once before the first client; keep ``endpoint`` to talk to clients.

        Runs on the thread that starts the gateway. It may block: clients are
        admitted once it has returned.
        """

    # ``*args`` and ``**route_args`` let a subclass declare exactly what its route
    # passes (``(self, request, response)``, ``(..., name: str)``) and still pass
    # mypy --strict: only the two positional parameters are required of it. The request
    # is ``Any`` so that a subclass may annotate the one its host gives: werkzeug's
    # ``Request``, or Django's ``HttpRequest`` under syncaerys.django.
    def on_handshake(self, request: Any, response: Response, /, *args: Any, **route_args: Any) -> Any:
        """Inspect the upgrade request; deny with ``response.status >= 300`` or by returning a response.

        The route's arguments (``/room/<name>``) arrive as keyword arguments;
        declare them as parameters (``def on_handshake(self, request,
        response, name)``). What it returns reaches ``on_open``, unless it is
        a response object (werkzeug's, Flask's or :class:`~syncaerys.Response`)
        with a status of 300 or more, which is sent to deny the upgrade.
        ``request`` is a werkzeug ``Request`` (:class:`syncaerys.Request`), or
        Django's ``HttpRequest`` for a gateway of :mod:`syncaerys.django`.
        ``flask.abort(403)`` (any werkzeug ``HTTPException``) denies with its
        response. What looks like a denial but would accept the client (``False``,
        ``403``, a Flask ``("forbidden", 403)`` tuple) and a body written with
        ``response.send`` while the status stays 101 (a 101 has no body) are
        refused with a 500 and an ERROR saying what to write instead.
        Runs on the request's thread; it may block (only that client waits).
        """
        return None

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        """A client is connected; ``handshake_data`` is what ``on_handshake`` returned.

        Runs on the client's thread, which reads nothing meanwhile: it may
        block, holding up that client only.
        """

    def on_data(self, client_id: int, message: Message) -> None:
        """A message started arriving; ``message.result()`` waits for all of it.

        Runs on the client's thread, one message at a time: it may block,
        holding up that client's next messages and closing handshake only.
        """

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        """The client is gone (``code`` 1006 when the TCP connection dropped).

        Runs once, on the client's thread; it may block (a gateway stopping waits for it).
        """

    def on_stop(self) -> None:
        """The server is stopping; clients are closed with 1001 right after.

        Runs on a thread of its own, which the stop waits for; it may block, but its
        time counts against the stop's timeout: once that is over the clients are
        closed with 1001 all the same (a WARNING names ``on_stop``).
        """

    def on_backplane_down(self) -> None:
        """The cluster backplane lost Redis: remote operations fail until it is back.

        Runs on a backplane thread: keep it short and do not block.
        """

    def on_backplane_up(self) -> None:
        """The cluster backplane (re)connected to Redis (not called for the first connection).

        Runs on the backplane's listener thread: keep it short and do not block.
        """


_NAMES = (
    ("on_start", "onStart"),
    ("on_handshake", "onHandshake"),
    ("on_open", "onOpen"),
    ("on_data", "onData"),
    ("on_close", "onClose"),
    ("on_stop", "onStop"),
    ("on_backplane_down", "onBackplaneDown"),
    ("on_backplane_up", "onBackplaneUp"),
)


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


@dataclass(frozen=True)
class Callbacks:
    """A handler's eight methods, resolved once (snake_case first, then camelCase)."""

    on_start: Callable[..., Any]
    on_handshake: Callable[..., Any]
    on_open: Callable[..., Any]
    on_data: Callable[..., Any]
    on_close: Callable[..., Any]
    on_stop: Callable[..., Any]
    on_backplane_down: Callable[..., Any]
    on_backplane_up: Callable[..., Any]

    @classmethod
    def resolve(cls, handler: object) -> Callbacks:
        """The callbacks of ``handler`` (an instance); :class:`TypeError` for a class or a non-callable.

        Never blocks.
        """
        if isinstance(handler, type):
            raise TypeError(f"websocket() needs a handler instance, not the class {handler.__name__}")
        if not isinstance(handler, Websocket) and not any(
            callable(getattr(handler, name, None)) for pair in _NAMES for name in pair
        ):
            # Duck-typed handlers (Aerys-style objects with the callbacks) pass; a function does not.
            raise TypeError(_not_a_handler(handler))
        _warn_unknown_callbacks(handler)
        methods = {}
        for snake, camel in _NAMES:
            method = _overridden(handler, snake)
            if method is None:
                method = getattr(handler, camel, None)
            if method is None:
                method = getattr(handler, snake, _noop)
            if not callable(method):
                raise TypeError(f"{type(handler).__name__}.{snake} is not callable")
            methods[snake] = method
        return cls(**methods)


#: Porting guide for users of flask-sock, whose handlers are functions.
PORTING_GUIDE = "docs/howto/flask-sock.md"
#: Callback names of other libraries, and the syncaerys callback that does their job.
_SIMILAR = {
    "on_message": "on_data",
    "on_receive": "on_data",
    "on_text": "on_data",
    "on_binary": "on_data",
    "on_connect": "on_open",
    "on_connected": "on_open",
    "on_disconnect": "on_close",
    "on_closed": "on_close",
    "on_error": "on_close (exceptions in callbacks are logged; the client is closed with 1011)",
    "on_shutdown": "on_stop",
    "on_startup": "on_start",
    "on_upgrade": "on_handshake",
}


def _not_a_handler(handler: object) -> str:
    if inspect.isfunction(handler) or inspect.ismethod(handler):
        name = getattr(handler, "__name__", "handler")
        return (
            f"websocket() needs a syncaerys.Websocket instance, not the function {name}(): a flask-sock style "
            "view that loops on ws.receive() becomes a subclass of syncaerys.Websocket whose "
            "on_data(client_id, message) is called for each message, and you pass an instance of it "
            f"(sockets.route('/echo', Echo())). See {PORTING_GUIDE}"
        )
    return (
        f"websocket() needs a syncaerys.Websocket instance, not {type(handler).__name__}, which has none of "
        "the callbacks: subclass syncaerys.Websocket and override the ones you need (on_open, on_data, on_close...)"
    )


def _warn_unknown_callbacks(handler: object) -> None:
    """A WARNING for each ``on_*`` (or ``onX``) method named like a callback of another library or a misspelt one.

    Such a method would never be called. Other ``on_*`` names (helpers of the handler's own) pass.
    """
    known = {name for pair in _NAMES for name in pair}
    for name in sorted(dir(type(handler))):
        if name in known or not (name.startswith("on_") or (name[:2] == "on" and name[2:3].isupper())):
            continue
        if not callable(getattr(type(handler), name, None)):
            continue
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
        hint = _SIMILAR.get(snake) or next(iter(difflib.get_close_matches(snake, [s for s, _ in _NAMES], n=1)), None)
        if hint is None:
            continue  # a helper of the handler's own (on_room_joined), not a misspelt callback
        _log.warning(
            "%s.%s is not a syncaerys callback and will never be called; did you mean %s? (the callbacks: %s)",
            type(handler).__name__,
            name,
            hint,
            ", ".join(snake for snake, _ in _NAMES),
        )


def _overridden(handler: object, name: str) -> Callable[..., Any] | None:
    """The handler's ``name`` method unless it is Websocket's no-op default."""
    method = getattr(handler, name, None)
    if method is None:
        return None
    if getattr(type(handler), name, None) is getattr(Websocket, name, None):
        return None
    return method  # type: ignore[no-any-return]


def check_route_arguments(function: Callable[..., Any], arguments: Iterable[str], rule: str, what: str) -> None:
    """Raise :class:`TypeError` unless ``function(request, response, **route_args)`` can be called.

    Called when a route is mounted, so that a handler that cannot take the
    rule's arguments fails there, naming the rule, instead of giving every
    client an HTTP 500. ``what`` names the function in the message.
    Thread-safe; never blocks.
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin or an odd callable: nothing to check
        return
    names = sorted(arguments)
    try:
        signature.bind(None, None, **dict.fromkeys(names))
    except TypeError as error:
        given = ", ".join(names) if names else "none"
        example = ", ".join(["request", "response", *names])
        raise TypeError(
            f"route {rule!r} passes the arguments ({given}) to {what}{signature}, which cannot take them: {error}. "
            f"Define it as ({example}) or accept **route_args"
        ) from None
