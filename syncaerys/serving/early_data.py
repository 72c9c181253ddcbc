"""Bytes a host server read past the upgrade request: frames a client sent before the 101.

RFC 6455 4.1 tells clients to wait for the 101, but one that does not must
not lose data silently. The host server's read buffer may already hold such
frames when the gateway takes the raw socket; this module takes them out, for
the connection to parse before anything it reads itself.
"""

from __future__ import annotations

import io
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["EARLY_DATA", "request_reader", "take_buffered", "take_from_reader"]

#: The environ key under which syncaerys's own server leaves those bytes.
EARLY_DATA = "syncaerys.early_data"


def take_from_reader(reader: io.BufferedReader, sock: socket.socket) -> bytes:
    """What ``reader`` holds in its buffer, consumed, without waiting for the socket.

    Call from the connection's thread (not thread-safe: it changes the socket's timeout for a moment); never
    blocks.
    """
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        held = reader.peek()  # the buffer as it is; a read of the socket finds nothing
    except (BlockingIOError, OSError, ValueError):
        held = b""
    finally:
        sock.settimeout(timeout)
    return reader.read(len(held)) if held else b""


def request_reader(environ: WSGIEnvironment) -> io.BufferedReader | None:
    """The buffered reader of the client's socket under ``wsgi.input``, for the hosts built on wsgiref.

    werkzeug's dev server and wsgiref's (which Django's ``runserver`` and
    ``LiveServerTestCase`` extend) hand the application the connection's own
    reader; Django's server wraps it in its ``LimitedStream``, which keeps the
    reader's bound ``read``. Thread-safe; never blocks.
    """
    stream = environ.get("wsgi.input")
    if not isinstance(stream, io.BufferedReader):
        stream = getattr(getattr(stream, "_read", None), "__self__", None)
    return stream if isinstance(stream, io.BufferedReader) else None


def take_buffered(environ: WSGIEnvironment, sock: socket.socket) -> bytes:
    """The bytes the host read past the request, for the hosts that let us reach them.

    syncaerys's own server hands them over in the environ; werkzeug's dev
    server leaves them in the request's ``wsgi.input`` buffer (Django's runserver, in the
    reader under its ``LimitedStream``); gunicorn 27
    and later keeps them in its parser, which gives them up with
    ``take_buffered()``. Other hosts: nothing (see the README).

    Call once, from the request's thread; never blocks.
    """
    own = environ.get(EARLY_DATA)
    if isinstance(own, bytes):
        return own
    reader = request_reader(environ)
    if reader is not None:
        return take_from_reader(reader, sock)
    stream = environ.get("wsgi.input")
    unreader = getattr(getattr(stream, "reader", None), "unreader", None)
    take = getattr(unreader, "take_buffered", None)
    if callable(take):
        data = take()
        return data if isinstance(data, bytes) else b""
    return b""
