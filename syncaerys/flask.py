"""Mount syncaerys gateways on Flask routes and blueprints.

One line per websocket route, on the app or on a blueprint; URL variables reach
``on_handshake`` as keyword arguments::

    from flask import Blueprint, Flask

    import syncaerys
    import syncaerys.flask

    app = Flask(__name__)
    sockets = syncaerys.flask.Websockets(app)
    sockets.route("/echo", Echo())  # a handler: wrapped with syncaerys.websocket()

    rooms = Blueprint("rooms", __name__)
    syncaerys.flask.route(rooms, "/room/<name>", syncaerys.websocket(Chat(), heartbeat_period=5))
    app.register_blueprint(rooms)

Or call :func:`serve` from a view of your own, to put Flask decorators
(authentication...) in front of the upgrade. Give its rule ``websocket=True``:
werkzeug's routing answers an upgrade request for any other rule with 400
(a plain GET then gets that 400 instead of the gateway's 426)::

    @app.get("/private/<name>", websocket=True)
    @login_required
    def private(name):
        return syncaerys.flask.serve(gateway, name=name)

A gateway mounted with :func:`route` or :meth:`Websockets.route` starts
(``on_start`` runs) at the app's first request of any kind, or when
:meth:`Websockets.start` / :meth:`Gateway.start` is called. From then on a view
or a background thread pushes through ``gateway.endpoint``::

    @app.post("/announce")
    def announce():
        gateway.endpoint.broadcast(flask.request.get_data(as_text=True))
        return "", 204

Before that, the endpoint's sends raise :class:`~syncaerys.NotStartedError`
(call ``sockets.start()`` first in a job that may run before any request).

The view runs the gateway in the request's own thread: ``on_handshake``,
``on_open``, ``on_data`` and ``on_close`` of a client run inside that
request's Flask context (``flask.request``, ``flask.g``, ``current_app`` work
there; ``on_start`` and ``on_stop`` run outside any request). A handshake the
gateway refuses (a protocol check, or ``on_handshake`` setting a status of 300
or more) comes back as a normal Flask response, which ``after_request``
functions see. After an upgrade the socket has been shut down by the gateway,
so the response Flask returns reaches nothing: werkzeug's server and gunicorn
take the failed write for a dropped client and log no error.

At the interpreter's exit (Ctrl-C on ``flask run`` or ``app.run()``) every
gateway mounted here that is still started runs ``on_stop`` and closes its
clients with 1001 (an ``atexit`` function; a SIGTERM that kills the process
without exiting skips it).

Works under ``app.run()``/``flask run`` (werkzeug's server), under
:class:`syncaerys.Server` and under gunicorn's ``gthread`` worker (see
:mod:`syncaerys.gunicorn`). Cookies set through ``flask.session`` during the
websocket are not delivered (the 101 is already on the wire); set cookies in
``on_handshake`` with ``response.set_cookie``.

Requires Flask (``pip install syncaerys[flask]``): without it, this module
imports but its functions raise ImportError; ``import syncaerys`` itself never
imports Flask.
"""

from __future__ import annotations

import atexit
import re
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from .gateway import ROUTE_ARGS
from .gateway import STARTED
from .gateway import STOPPED
from .gateway import Gateway
from .gateway import websocket
from .options import Options
from .router import rule_arguments
from .websocket import PORTING_GUIDE
from .wsgi_call import call_wsgi

# Flask is optional: without it this module still imports, and using it raises
# ImportError (as websockets does for werkzeug in its router).
_flask_missing: ImportError | None = None
try:
    import flask
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    _flask_missing = error


def _require_flask() -> None:
    if _flask_missing is not None:
        raise ImportError("syncaerys.flask requires Flask: pip install syncaerys[flask]") from _flask_missing


if TYPE_CHECKING:
    from flask.sansio.blueprints import BlueprintSetupState
    from flask.sansio.scaffold import Scaffold
    from typing_extensions import Unpack

    from .options import WebsocketOptions

__all__ = ["Websockets", "route", "serve"]

#: Rule options used when none are given: the gateway itself answers other
#: methods and non-upgrade requests (405, 426...), so only GET is routed to it.
DEFAULT_METHODS = ("GET",)


def serve(gateway: Gateway, /, **route_args: Any) -> flask.Response:
    """Run ``gateway`` for the current Flask request; return the response for Flask to return.

    Call it from a Flask view. ``route_args`` reach ``on_handshake`` as keyword
    arguments. Blocks until the websocket client is gone. A refused handshake
    gives a normal response carrying the gateway's status, headers and body.

    Thread-safe (each request calls it in its own thread).
    """
    _require_flask()
    environ = flask.request.environ
    environ[ROUTE_ARGS] = dict(route_args)
    status, headers, body = call_wsgi(gateway, environ)
    response_class = flask.current_app.response_class
    response = response_class(body, status=status, headers=headers)
    if not any(name.lower() == "content-type" for name, _ in headers):
        # Keep the gateway's response as it was: no default text/html.
        del response.headers["Content-Type"]
    return response


# The gateways mounted through this module, stopped at the interpreter's exit (see _stop_at_exit).
_mounted: weakref.WeakSet[Gateway] = weakref.WeakSet()
_mounted_lock = threading.Lock()
_exit_hook: list[bool] = []  # non-empty once _stop_at_exit is registered


def _stop_at_exit() -> None:
    """At exit (``flask run`` after Ctrl-C): ``on_stop`` and 1001 for every gateway still started.

    The clients' threads are daemon threads of werkzeug's server, still running while atexit
    functions run, so the closing handshakes complete. A gateway stopped already (gunicorn's
    hooks, ``syncaerys.run``, ``sockets.stop()``) is left alone.
    """
    with _mounted_lock:
        gateways = list(_mounted)
    for gateway in gateways:
        if gateway.state == STARTED:
            gateway.stop()


def _remember(gateway: Gateway) -> None:
    with _mounted_lock:
        if not _exit_hook:
            atexit.register(_stop_at_exit)
            _exit_hook.append(True)
        _mounted.add(gateway)


def route(
    scaffold: Scaffold,
    rule: str,
    target: object,
    *,
    endpoint: str | None = None,
    rule_options: Mapping[str, Any] | None = None,
    **options: Unpack[WebsocketOptions],
) -> Gateway:
    """Mount a websocket on ``rule`` of a Flask app or blueprint; return its gateway.

    :param scaffold: a :class:`flask.Flask` or :class:`flask.Blueprint`.
    :param rule: a werkzeug rule; its variables (``/room/<name>``) reach
        ``on_handshake`` as keyword arguments.
    :param target: a gateway from :func:`syncaerys.websocket`, or a handler
        (a :class:`~syncaerys.Websocket`), wrapped here with ``options``.
    :param endpoint: the Flask endpoint name; by default ``"websocket"``
        followed by the rule's words, e.g. ``websocket_room_name``.
        ``url_for`` gives the full ``ws://`` (``wss://`` under HTTPS) URL, as
        browsers want it: ``url_for("rooms.websocket_room_name", name="lobby")``.
    :param rule_options: more options for ``add_url_rule`` (``methods``,
        ``defaults``, ``subdomain``...). Only GET is routed by default.
    :param options: gateway options (:class:`~syncaerys.Options`), only when
        ``target`` is a handler.

    Not thread-safe: call it while setting up the app, as Flask's ``add_url_rule``; never blocks.
    """
    _require_flask()
    gateway = _as_gateway(target, options)
    _remember(gateway)
    extra = dict(rule_options or {})
    if "websocket" in extra:
        raise TypeError("rule_options cannot set 'websocket': route() adds both kinds of rule")
    extra.setdefault("methods", list(DEFAULT_METHODS))
    name = endpoint if endpoint is not None else default_endpoint(rule)
    defaults = set(extra.get("defaults") or {})
    if isinstance(scaffold, flask.Blueprint):
        # The full rule (with the blueprint's url_prefix) is known when the blueprint is registered.
        def check(state: BlueprintSetupState) -> None:
            full = _prefixed(state.url_prefix, rule)
            gateway.check_route_arguments(full, rule_arguments(full) | defaults | set(state.url_defaults))

        scaffold.record(check)
    else:
        gateway.check_route_arguments(rule, rule_arguments(rule) | defaults)

    def view(**route_args: Any) -> flask.Response:
        return serve(gateway, **route_args)

    def start_gateway() -> None:
        # The gateway starts (on_start runs) at the app's first request of any kind, so
        # that views and background jobs can push through gateway.endpoint from then on.
        # Not at import: under gunicorn --preload that would be the master, whose
        # threads do not survive the fork into the workers.
        if gateway.state == STOPPED and not gateway.stopping:
            gateway.start()

    if isinstance(scaffold, flask.Blueprint):
        scaffold.before_app_request(start_gateway)
    else:
        scaffold.before_request(start_gateway)

    view.__name__ = name
    view.__qualname__ = name
    view.__doc__ = f"The websocket at {rule}, served by syncaerys."
    # Two rules for one view. werkzeug's routing sends upgrade requests only to
    # rules marked websocket=True (anything else is a 400 "WebsocketMismatch"),
    # and plain requests only to unmarked ones; with both, every request for
    # the path reaches the gateway, which answers a plain GET with 426. The
    # websocket rule comes first so that url_for(..., _external=True) gives ws://.
    websocket_options = {**extra, "methods": ["GET"]}
    scaffold.add_url_rule(rule, endpoint=name, view_func=view, websocket=True, **websocket_options)
    scaffold.add_url_rule(rule, endpoint=name, view_func=view, **extra)
    return gateway


def _prefixed(url_prefix: str | None, rule: str) -> str:
    """The rule as Flask registers it under a blueprint's ``url_prefix``."""
    if url_prefix is None:
        return rule
    return "/".join((url_prefix.rstrip("/"), rule.lstrip("/"))) if rule else url_prefix


def default_endpoint(rule: str) -> str:
    """The endpoint name :func:`route` gives ``rule``: ``/room/<name>`` → ``websocket_room_name``.

    Thread-safe; never blocks.
    """
    words = re.sub(r"<(?:[^<>:]*:)?([^<>]*)>", r"\1", rule)
    slug = re.sub(r"\W+", "_", words).strip("_")
    return f"websocket_{slug}" if slug else "websocket"


def _as_gateway(target: object, options: Mapping[str, Any]) -> Gateway:
    if isinstance(target, Gateway):
        if options:
            raise TypeError(f"gateway options {sorted(options)} given with a ready gateway; pass them to websocket()")
        return target
    if isinstance(target, type):
        raise TypeError(f"pass a handler instance, not the class {target.__name__}")
    return websocket(target, **options)


class Websockets:
    """A Flask extension holding the websocket routes of an app.

    ``Websockets(app)`` or ``Websockets()`` then :meth:`init_app`. Routes added
    before :meth:`init_app` are registered when it runs. The extension is
    stored as ``app.extensions["syncaerys"]``; :meth:`gateways` lists every
    gateway mounted through it and :meth:`stop` stops them all (``on_stop``,
    then 1001 to every client), e.g. after ``app.run()`` returns.

    Set it up (:meth:`init_app`, :meth:`route`) while setting up the app; :meth:`gateways`,
    :meth:`start` and :meth:`stop` are thread-safe.

    :param options: default gateway options for handlers passed to :meth:`route`.
    """

    def __init__(self, app: flask.Flask | None = None, **options: Unpack[WebsocketOptions]) -> None:
        _require_flask()
        Options.from_kwargs(options)  # a misspelt option fails here, not at the first route()
        self.app: flask.Flask | None = None
        self.options = dict(options)
        self._gateways: list[Gateway] = []
        self._pending: list[tuple[str, Gateway, str | None, dict[str, Any]]] = []
        self._lock = threading.Lock()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Attach to ``app`` and register the routes added so far.

        Call once, while setting up the app (not thread-safe); never blocks.
        """
        with self._lock:
            self.app = app
            pending, self._pending = self._pending, []
        app.extensions["syncaerys"] = self
        for rule, gateway, endpoint, rule_options in pending:
            route(app, rule, gateway, endpoint=endpoint, rule_options=rule_options)

    def route(
        self,
        rule: str,
        target: object = None,
        *,
        blueprint: flask.Blueprint | None = None,
        endpoint: str | None = None,
        rule_options: Mapping[str, Any] | None = None,
        **options: Unpack[WebsocketOptions],
    ) -> Gateway:
        """Mount a websocket on ``rule`` (of ``blueprint`` if given, else of the app).

        ``target`` is a gateway or a handler; a handler is wrapped with this
        extension's default options updated with ``options``. Returns the
        gateway. See :func:`route` for ``endpoint`` and ``rule_options``.

        Not thread-safe (it adds Flask rules; the extension's own state is locked): call it while setting up
        the app. Never blocks.

        It is not a decorator: flask-sock's ``@sock.route("/echo")`` over ``def echo(ws)``
        becomes a :class:`~syncaerys.Websocket` subclass and ``sockets.route("/echo", Echo())``
        (without a target it raises :class:`TypeError` saying so).
        """
        if target is None:
            raise TypeError(
                f"Websockets.route({rule!r}) needs a handler: it is not a decorator as flask-sock's "
                "@sock.route() is. Write a subclass of syncaerys.Websocket (on_data(client_id, message) "
                f"gets each message) and mount an instance: sockets.route({rule!r}, Echo()). See {PORTING_GUIDE}"
            )
        if isinstance(target, Gateway):
            gateway = _as_gateway(target, options)
        else:
            gateway = _as_gateway(target, {**self.options, **options})
        with self._lock:
            if gateway not in self._gateways:  # one gateway on several rules is one endpoint
                self._gateways.append(gateway)
            scaffold: Scaffold | None = blueprint if blueprint is not None else self.app
            if scaffold is None:
                self._pending.append((rule, gateway, endpoint, dict(rule_options or {})))
                return gateway
        route(scaffold, rule, gateway, endpoint=endpoint, rule_options=rule_options)
        return gateway

    def gateways(self) -> list[Gateway]:
        """Every gateway mounted through this extension. Thread-safe; never blocks."""
        with self._lock:
            return list(self._gateways)

    def start(self) -> None:
        """Start every gateway now (``on_start``) instead of at its first request.

        Thread-safe; blocks while the ``on_start`` calls run.
        """
        for gateway in self.gateways():
            gateway.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop every gateway: ``on_stop``, then 1001 to every client (see :meth:`Gateway.stop`).

        Thread-safe; blocks until every gateway stopped, each at most ``timeout`` (by default its
        ``close_period`` plus one second).
        """
        for gateway in self.gateways():
            gateway.stop(timeout)
