"""Host-socket discovery: the client's raw socket, wherever the WSGI host keeps it.

A gateway writes the 101 and the frames on the socket itself, so it needs the
connection under the WSGI request. werkzeug (syncaerys's own server included),
gunicorn and eventlet put it in different places in the environ, which
simple-websocket knows; under gevent it is taken from the reader of
``wsgi.input``. :func:`find_socket` is the one question the gateway asks.
"""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING
from typing import Any

import simple_websocket.ws

from ..exceptions import HostError
from .early_data import request_reader

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["HostError", "find_socket"]


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


#: What gevent must have patched for syncaerys's threads, locks and sockets to cooperate with its loop.
_GEVENT_MODULES = ("socket", "threading", "select")


def find_socket(environ: WSGIEnvironment) -> socket.socket:
    """The client's raw socket from the WSGI environ; :class:`HostError` if the host cannot give one.

    Thread-safe; never blocks.
    """
    software = str(environ.get("SERVER_SOFTWARE") or "this WSGI server")
    if software.startswith("gunicorn/") and not environ.get("wsgi.multithread"):
        raise HostError(
            "gunicorn's sync worker serves one request at a time: a websocket would hold the worker until "
            "its --timeout kills it with every client. Run gunicorn -k gthread --threads N (N: the websockets "
            "expected per worker plus headroom), or -k gevent; see syncaerys.gunicorn",
            500,
        )
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
    """The socket under :func:`~syncaerys.serving.early_data.request_reader`'s reader (a ``socket.SocketIO``).

    ``None`` when the host gives no such reader. Thread-safe; never blocks.
    """
    reader = request_reader(environ)
    sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _and_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _gevent_socket(environ: WSGIEnvironment, software: str) -> socket.socket:
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
