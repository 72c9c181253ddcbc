"""syncaerys: a thread-based synchronous WebSocket server with the Aerys programming model.

Write a :class:`Websocket` subclass with plain blocking methods, wrap it with
:func:`websocket` (a WSGI application) and serve it with :func:`run`.
"""

from __future__ import annotations

from .endpoint import ClientInfo
from .endpoint import Endpoint
from .exceptions import ClientException
from .exceptions import OptionError
from .exceptions import ProtocolError
from .exceptions import SyncaerysError
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
from .server import run
from .websocket import Websocket

__version__ = "0.1.0"

__all__ = [
    "BroadcastResult",
    "ClientException",
    "ClientInfo",
    "CloseCode",
    "Endpoint",
    "Gateway",
    "Host",
    "Message",
    "OptionError",
    "Options",
    "ProtocolError",
    "Response",
    "Router",
    "SendFuture",
    "Server",
    "SyncaerysError",
    "Websocket",
    "run",
    "websocket",
]
