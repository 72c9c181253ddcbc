"""syncaerys: a thread-based synchronous WebSocket server with the Aerys programming model.

Write a :class:`Websocket` subclass with plain blocking methods, wrap it with
:func:`websocket` (a WSGI application) and serve it with :func:`run`.
``Request`` is werkzeug's request class, re-exported for type annotations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from werkzeug.wrappers import Request

from . import compiled  # first: importing it applies SYNCAERYS_NO_EXTENSIONS to the compiled modules
from .backplane import Backplane
from .backplane import LocalBackplane
from .endpoint import ClientInfo
from .endpoint import Endpoint
from .exceptions import BackplaneError
from .exceptions import ClientClosed
from .exceptions import ClientException
from .exceptions import ConcurrencyError
from .exceptions import NotStartedError
from .exceptions import OptionError
from .exceptions import ProtocolError
from .exceptions import SyncaerysError
from .exceptions import UnknownClient
from .futures import BroadcastResult
from .futures import SendFuture
from .gateway import Gateway
from .gateway import websocket
from .host import Host
from .message import Message
from .options import Options
from .protocol.frames import CloseCode
from .response import Response
from .router import Router
from .server import Server
from .standalone.runner import run
from .websocket import Websocket

if TYPE_CHECKING:
    from .backplane.publisher import Publisher
    from .backplane.redis_backplane import RedisBackplane

__version__ = "0.1.0"

__all__ = [
    "Backplane",
    "BackplaneError",
    "BroadcastResult",
    "ClientClosed",
    "ClientException",
    "ClientInfo",
    "CloseCode",
    "ConcurrencyError",
    "Endpoint",
    "Gateway",
    "Host",
    "LocalBackplane",
    "Message",
    "NotStartedError",
    "OptionError",
    "Options",
    "ProtocolError",
    "Publisher",
    "RedisBackplane",
    "Request",
    "Response",
    "Router",
    "SendFuture",
    "Server",
    "SyncaerysError",
    "UnknownClient",
    "Websocket",
    "run",
    "websocket",
]

# A compiled build's classes lose their docstrings (mypyc): the public ones get them back.
compiled.restore_class_docs(globals()[name] for name in __all__ if name in globals())


def __getattr__(name: str) -> Any:
    # Imported on use: only the cluster mode needs redis-py.
    if name == "RedisBackplane":
        from .backplane.redis_backplane import RedisBackplane

        return RedisBackplane
    if name == "Publisher":
        from .backplane.publisher import Publisher

        return Publisher
    raise AttributeError(f"module 'syncaerys' has no attribute {name!r}")
