"""Test helpers: serve a handler in-process and talk to it with a real client.

A test starts its handler (or a gateway, a :class:`~syncaerys.Router`, a
:class:`~syncaerys.Host` or any WSGI application) on syncaerys's own server on
127.0.0.1 with a free port, connects a real WebSocket client over TCP, and
checks what comes back::

    from syncaerys.testing import connect, serve

    def test_echo():
        with serve(Echo(), heartbeat_period=None) as server:
            with connect(server, "/") as client:
                client.send("hi")
                assert client.receive(timeout=1) == "hi"
                client.close(1000)
            assert client.close_code == 1000

A denied handshake raises :class:`HandshakeRejected`, which carries the status,
headers and body the server answered with::

    with pytest.raises(HandshakeRejected) as denied:
        connect(server, "/private")
    assert denied.value.status == 401

The client runs on a plain socket with wsproto (no asyncio, no ``websockets``
library). One background thread per client does all the socket I/O: it answers
the server's pings at once (also while the test is busy elsewhere), answers
the server's close frame, and queues incoming messages for :meth:`Client.receive`.
Every blocking call of the client takes a ``timeout`` (the client's
``timeout`` by default), so a test that waits for something that never comes
fails instead of hanging.

The helpers live in :mod:`syncaerys.testing.serving` (:func:`serve`) and
:mod:`syncaerys.testing.client` (:func:`connect`, :class:`Client` and its
errors); import them from here.
"""

from __future__ import annotations

from .client import DEFAULT_TIMEOUT as _DEFAULT_TIMEOUT
from .client import Client
from .client import ConnectionClosed
from .client import HandshakeError
from .client import HandshakeRejected
from .client import WebSocketClientError
from .client import connect
from .serving import serve

# Bound here, not only imported: autodoc reads the comment of an assignment in this module.
#: The default bound, in seconds, of every blocking call of :class:`Client`.
DEFAULT_TIMEOUT = _DEFAULT_TIMEOUT

__all__ = [
    "DEFAULT_TIMEOUT",
    "Client",
    "ConnectionClosed",
    "HandshakeError",
    "HandshakeRejected",
    "WebSocketClientError",
    "connect",
    "serve",
]
