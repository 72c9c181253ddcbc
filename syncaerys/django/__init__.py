"""WebSockets in a Django project: a gateway in the URLconf, each client on its own thread.

Add the app, then mount handlers like views; the path converters' values reach
``on_handshake`` as keyword arguments, and ``on_handshake`` gets Django's own
``HttpRequest`` (``request.user``, ``request.session``) after the project's middleware::

    # settings.py
    INSTALLED_APPS = [..., "syncaerys.django"]

    # chat/sockets.py
    import syncaerys.django
    from syncaerys import Websocket

    class Chat(Websocket):
        def on_start(self, endpoint):
            self.endpoint = endpoint

        def on_handshake(self, request, response, room):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())   # any HttpResponse denies
            return {"room": room, "user": request.user.get_username()}

        def on_data(self, client_id, message):
            Message.objects.create(text=message.result())          # the ORM, on this client's thread

    chat = syncaerys.django.websocket(Chat(), heartbeat_period=20)

    # urls.py
    urlpatterns = [path("ws/chat/<str:room>/", chat)]

    # views.py: push from any view (or a thread of this process)
    chat.endpoint.broadcast("hello")

Around every callback the integration does what Django does around a view
(:mod:`syncaerys.django.cycle`): stale database connections are closed before and
after, ``ATOMIC_REQUESTS`` gives each callback its own transaction, and the view
that serves the websocket is never itself atomic. The Origin check follows the
project's settings (:mod:`syncaerys.django.origin`). ``settings.SYNCAERYS`` holds
project-wide defaults (:mod:`syncaerys.django.conf`).

Served by ``manage.py runserver`` (with or without its autoreloader), gunicorn's
``gthread`` worker with the project's ``wsgi.py``, ``manage.py runsyncaerys`` and
``python -m syncaerys myproject.wsgi:application`` (syncaerys's own server), and
behind nginx. Not under ASGI (daphne, uvicorn): an ASGI server never hands a
WebSocket upgrade to Django's views.

A gateway starts (``on_start``) with syncaerys's own server, or else at the
process's first request of any kind. Requires Django (``pip install
syncaerys[django]``).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from wsgiref.util import is_hop_by_hop

from django.apps import apps as app_registry
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_started
from django.db import connections
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseBase

from ..gateway import FRAMEWORK_REQUEST
from ..gateway import ORIGIN_VERDICT
from ..gateway import ROUTE_ARGS
from ..gateway import STOPPED
from ..gateway import Gateway
from ..protocol.handshake import SAME_ORIGIN
from ..websocket import Callbacks
from ..wsgi_call import call_wsgi
from .conf import gateway_options
from .cycle import DENIAL
from .cycle import atomic_request_aliases
from .cycle import in_request_cycle
from .origin import origin_verdict

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..endpoint import Endpoint
    from ..options import WebsocketOptions

__all__ = [
    "DjangoApplication",
    "WebsocketView",
    "application",
    "gateways",
    "serve",
    "start",
    "stop",
    "websocket",
]

logger = logging.getLogger("syncaerys.django")

APP = "syncaerys.django"

# Every gateway made by websocket() in this process, in the order made.
_gateways: list[Gateway] = []
_gateways_lock = threading.Lock()


class _EveryDatabase:
    """A view's ``_non_atomic_requests`` that names every alias: the websocket's view is never atomic.

    Django wraps a view in one transaction per database with ``ATOMIC_REQUESTS``
    unless the alias is in this set; for a websocket that transaction would last
    the client's whole life. Each callback gets its own instead.
    """

    def __contains__(self, alias: object) -> bool:
        return True


class WebsocketView:
    """A Django view that serves one gateway; made by :func:`websocket`, mounted with ``path()``.

    :attr:`gateway` is the gateway and :attr:`endpoint` its endpoint, for views and
    threads of this process to push through. Calling it (Django does) serves the
    websocket for the request's whole life. Thread-safe.
    """

    _non_atomic_requests = _EveryDatabase()
    csrf_exempt = True

    def __init__(self, gateway: Gateway) -> None:
        #: The gateway this view serves.
        self.gateway = gateway

    @property
    def endpoint(self) -> Endpoint:
        """The gateway's endpoint (its sends raise NotStartedError before the gateway started).

        Thread-safe; never blocks.
        """
        return self.gateway.endpoint

    def __call__(self, request: HttpRequest, *args: Any, **route_args: Any) -> HttpResponseBase:
        if args:
            raise ImproperlyConfigured(
                f"the websocket at {request.path!r} was routed with unnamed regex groups {args!r}; "
                "on_handshake takes route arguments by name: use named groups (?P<name>...) or path converters"
            )
        return serve(request, self, **route_args)

    def __repr__(self) -> str:
        return f"<WebsocketView of {type(self.gateway.handler).__name__}>"


def websocket(target: object, **options: Unpack[WebsocketOptions]) -> WebsocketView:
    """A view serving ``target`` (a :class:`~syncaerys.Websocket` handler), for ``path()`` in a URLconf.

    ``options`` are the gateway's (:class:`~syncaerys.Options`), over the defaults of
    ``settings.SYNCAERYS["OPTIONS"]``; validated now. Without ``allowed_origins``, the
    Origin check follows the project's settings (see :mod:`syncaerys.django.origin`).

    Thread-safe; never blocks (the gateway starts later, see the module's docs).
    """
    if isinstance(target, Gateway):
        raise TypeError(
            "syncaerys.django.websocket() takes the handler itself, not a gateway from syncaerys.websocket(): "
            "it wraps the handler's callbacks in Django's request cycle"
        )
    if isinstance(target, WebsocketView):
        raise TypeError("this is already a websocket view: mount it as it is")
    if isinstance(target, type):
        raise TypeError(f"pass a handler instance, not the class {target.__name__}: websocket({target.__name__}())")
    gateway = Gateway(target, gateway_options(options), callbacks=in_request_cycle(Callbacks.resolve(target)))
    with _gateways_lock:
        _gateways.append(gateway)
    return WebsocketView(gateway)


def gateways() -> list[Gateway]:
    """Every gateway :func:`websocket` made in this process, the URLconf's included once it is loaded.

    Thread-safe; never blocks.
    """
    with _gateways_lock:
        return list(_gateways)


def serve(request: HttpRequest, view: WebsocketView, /, **route_args: Any) -> HttpResponseBase:
    """Serve ``view``'s websocket for ``request``; return the response for Django.

    Call it from a view of your own, to put Django decorators (``login_required``...)
    in front of the upgrade; ``route_args`` reach ``on_handshake`` as keyword
    arguments. Under ``ATOMIC_REQUESTS`` decorate that view with
    ``transaction.non_atomic_requests``. Blocks until the client is gone; a refused
    handshake gives a normal response (Django's own, when ``on_handshake`` denied
    with an ``HttpResponse``). Thread-safe (each request in its own thread).
    """
    if not isinstance(view, WebsocketView):
        raise TypeError(
            f"serve() takes the view from syncaerys.django.websocket(handler), not {view!r}: "
            "that wraps the handler's callbacks in Django's request cycle"
        )
    _check_deployment(request)
    gateway = view.gateway
    environ = request.META
    environ[ROUTE_ARGS] = dict(route_args)
    environ[FRAMEWORK_REQUEST] = request
    if gateway.options.allowed_origins == SAME_ORIGIN:
        environ[ORIGIN_VERDICT] = origin_verdict(request)
    try:
        status, headers, body = call_wsgi(gateway, environ)
    finally:
        denial = environ.pop(DENIAL, None)
        # What the client's thread still holds once its websocket is over, CONN_MAX_AGE or not.
        connections.close_all()
    code = int(status.split(" ", 1)[0])
    if isinstance(denial, HttpResponseBase) and denial.status_code == code:
        return denial
    response = HttpResponse(body, status=code)
    if not any(name.lower() == "content-type" for name, _ in headers):
        del response.headers["Content-Type"]
    wsgiref = str(environ.get("SERVER_SOFTWARE", "")).startswith("WSGIServer/")
    for name, value in headers:
        # wsgiref (runserver) refuses hop-by-hop headers from applications, as PEP 3333 asks
        # (the 426's "Upgrade: websocket" among them); other hosts pass them on.
        if not (wsgiref and is_hop_by_hop(name)):
            response.headers[name] = value
    return response


def _check_deployment(request: HttpRequest) -> None:
    if not app_registry.is_installed(APP):
        raise ImproperlyConfigured(
            f"add {APP!r} to INSTALLED_APPS: it starts the gateways with the process's first request, stops them "
            "when the process exits, and checks the URLconf's websocket routes"
        )
    if "wsgi.input" not in request.META:
        raise ImproperlyConfigured(
            "this websocket request came through Django's ASGI handler, which cannot hand over the client's "
            "socket: serve the project through its wsgi.py (manage.py runserver without daphne, "
            "gunicorn -k gthread, manage.py runsyncaerys)"
        )
    atomic = [alias for alias in atomic_request_aliases() if _in_atomic_block(alias)]
    if atomic:
        raise ImproperlyConfigured(
            f"the view serving the websocket at {request.path!r} runs in ATOMIC_REQUESTS' transaction on {atomic}, "
            "which would last the client's whole life: decorate it with @transaction.non_atomic_requests "
            "(each callback gets a transaction of its own)"
        )


def _in_atomic_block(alias: str) -> bool:
    return bool(connections[alias].in_atomic_block)


class DjangoApplication:
    """The project's WSGI application, with its gateways for syncaerys's own server to start and stop.

    Each request's database connections are closed when its response is done:
    syncaerys's server gives each HTTP connection a thread that ends with it.

    Made by :func:`application`; ``python -m syncaerys myproject.wsgi:application``
    and ``manage.py runsyncaerys`` serve one. Thread-safe.
    """

    def __init__(self, wsgi: Callable[..., Iterable[bytes]]) -> None:
        #: The project's WSGI application (Django's ``WSGIHandler``).
        self.wsgi = wsgi

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return _ReleasingConnections(self.wsgi(environ, start_response))

    def gateways(self) -> list[Gateway]:
        """The URLconf's gateways, after checking its websocket routes (``ImproperlyConfigured`` if wrong).

        Thread-safe; imports the URLconf the first time.
        """
        from .checks import check_routes

        errors = check_routes()
        if errors:
            raise ImproperlyConfigured("; ".join(f"{e.id}: {e.msg}" for e in errors))
        return gateways()


class _ReleasingConnections:
    """A response that closes its thread's database connections once the host is done with it.

    syncaerys's server gives each HTTP connection a thread of its own, which ends with
    it: a connection kept for ``CONN_MAX_AGE`` would wait for the garbage collector.
    Django's runserver closes them per connection likewise.
    """

    def __init__(self, result: Iterable[bytes]) -> None:
        self._result = result

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            connections.close_all()


def application(wsgi: Callable[..., Iterable[bytes]] | None = None) -> DjangoApplication:
    """``wsgi`` (by default the project's, ``get_wsgi_application()``) for :func:`syncaerys.run` or ``Server``.

    Serving the plain ``WSGIHandler`` works too, but its gateways then start at the
    first request instead of with the server. Call once, at start; never blocks.
    """
    if wsgi is None:
        from django.core.wsgi import get_wsgi_application

        wsgi = get_wsgi_application()
    return DjangoApplication(wsgi)


def is_django_application(target: object) -> bool:
    """Whether ``target`` is Django's ``WSGIHandler`` (without importing Django if it is not loaded).

    Thread-safe; never blocks.
    """
    module = sys.modules.get("django.core.handlers.wsgi")
    handler = getattr(module, "WSGIHandler", None)
    return isinstance(handler, type) and isinstance(target, handler)


def start(environ: dict[str, Any] | None = None) -> None:
    """Start every gateway of the URLconf that has not started (loading the URLconf first).

    Under syncaerys's own server (``environ`` from one of its requests), the gateways
    are handed to the server, which starts them and stops them with itself. The app's
    ``request_started`` receiver calls it at each request. Thread-safe; blocks while
    ``on_start`` calls run.
    """
    _check_routes_once()
    server = environ.get("syncaerys.server") if environ is not None else None
    for gateway in gateways():
        if server is not None:
            server.attach(gateway)
        elif gateway.state == STOPPED and not gateway.stopping:
            gateway.start()


_routes_checked = threading.Event()


def _check_routes_once() -> None:
    """Load the URLconf (which makes its gateways) and log, once per process, the routes that cannot work.

    ``manage.py check`` and runserver report them as system checks; gunicorn runs no
    checks, so each process says it here, at its first request.
    """
    if _routes_checked.is_set():
        return
    from .checks import check_routes

    for problem in check_routes():
        logger.error("%s: %s", problem.id, problem.msg)
    _routes_checked.set()


def stop(timeout: float | None = None) -> None:
    """Stop every started gateway: ``on_stop``, then 1001 to its clients. Runs when the process's main thread ends.

    Thread-safe; blocks until each stopped (at most ``timeout`` each, by default its
    ``close_period`` plus one second).
    """
    for gateway in gateways():
        gateway.stop(timeout)


def _started_request(sender: object, environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
    start(environ)
    _watch_exit()


_exit_watcher: threading.Thread | None = None


def _watch_exit() -> None:
    """Stop the gateways when the main thread ends (runserver's Ctrl-C, its autoreloader's restart).

    A thread of its own, not ``atexit``: it runs while the interpreter still lets the stop
    start what it needs (Python 3.12 refuses new threads once the atexit functions run).
    Not a daemon, so that the process waits for the clients' closing handshakes.
    """
    global _exit_watcher
    if _exit_watcher is not None:
        return
    with _gateways_lock:
        if _exit_watcher is not None:
            return
        _exit_watcher = threading.Thread(target=_stop_after_main, name="syncaerys-django-exit", daemon=False)
        _exit_watcher.start()


def _stop_after_main() -> None:
    threading.main_thread().join()
    stop()


def connect_signals() -> None:
    """Start the gateways with the first request and stop them once the main thread ends (the app's ``ready()``)."""
    request_started.connect(_started_request, dispatch_uid="syncaerys.django.start")
