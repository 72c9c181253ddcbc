"""The in-process server of the test helpers: :func:`serve` a handler, gateway, Router, Host or WSGI app."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from ..gateway import Gateway
from ..gateway import websocket
from ..host import Host
from ..responders import is_wsgi_app
from ..router import Router
from ..server import Server
from ..websocket import Websocket

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..options import WebsocketOptions

__all__ = ["serve"]

_CALLBACK_NAMES = (
    "on_start",
    "on_handshake",
    "on_open",
    "on_data",
    "on_close",
    "on_stop",
    "onStart",
    "onHandshake",
    "onOpen",
    "onData",
    "onClose",
    "onStop",
)


def _as_app(target: object, options: Mapping[str, Any]) -> Any:
    """What :func:`serve` puts on the server for ``target`` (see there)."""
    if isinstance(target, type):
        raise TypeError(f"serve() needs an instance, not the class {target.__name__}")
    if isinstance(target, (Gateway, Router, Host)) or (
        is_wsgi_app(target) and not any(hasattr(target, name) for name in _CALLBACK_NAMES)
    ):
        if options:
            raise TypeError(
                f"gateway options ({', '.join(sorted(options))}) only apply to a handler; "
                "pass them to syncaerys.websocket() instead"
            )
        return target
    if isinstance(target, Websocket) or any(hasattr(target, name) for name in _CALLBACK_NAMES):
        return websocket(target, **options)
    if callable(target):  # an Aerys-style responder: view(request, response)
        if options:
            raise TypeError("gateway options only apply to a websocket handler")
        return Host().use(target)
    raise TypeError(f"serve() cannot serve {target!r}: expected a handler, gateway, Router, Host or WSGI app")


@contextlib.contextmanager
def serve(
    target: object, *, server_options: Mapping[str, Any] | None = None, **options: Unpack[WebsocketOptions]
) -> Iterator[Server]:
    """Serve ``target`` on 127.0.0.1 with a free port, from a background thread.

    ``target`` is one of:

    * a websocket handler (a :class:`~syncaerys.Websocket` or any object with
      its methods): it is wrapped with ``syncaerys.websocket(target, **options)``
      and answers on every path;
    * a gateway from :func:`~syncaerys.websocket`, a :class:`~syncaerys.Router`,
      a :class:`~syncaerys.Host` (its addresses are ignored, its TLS context is
      kept) or any WSGI application (Flask included); ``options`` must then be
      empty;
    * an Aerys-style responder ``view(request, response)``.

    ``server_options`` go to :class:`~syncaerys.Server` (``max_connections``,
    ``header_timeout``, ``max_header_bytes``, ``ssl_context``). Yields the
    running server (``server.port``, ``server.url``, ``server.gateways``); on
    exit the server stops as in production: ``on_stop``, clients closed with
    1001, STOPPED.

    Thread-safe (each call starts its own server); entering the ``with`` block blocks while ``on_start`` runs,
    leaving it until the server stopped.
    """
    app = _as_app(target, options)
    server_kwargs: dict[str, Any] = dict(server_options or {})
    if isinstance(app, Host) and app.ssl_context is not None:
        server_kwargs.setdefault("ssl_context", app.ssl_context)
    with Server(app, "127.0.0.1", 0, **server_kwargs) as server:
        yield server
