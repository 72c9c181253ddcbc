"""Transports: how a connection reads and writes its socket, plain or TLS.

The reading thread blocks in :meth:`recv`; any thread may call
:meth:`send_nowait` (one buffer) or :meth:`send_parts_nowait` (a frame's
header and payload), which never block and return how many bytes the socket
took. A plain TCP socket stays in blocking mode and writes with
``MSG_DONTWAIT``, the two parts with one ``sendmsg`` (no copy of the payload);
a TLS socket is switched to non-blocking mode and every call into its ``SSL``
object is serialized by a lock, because OpenSSL does not allow one ``SSL``
object to be used by two threads at once. ``SSLSocket`` has no ``sendmsg``,
so a TLS frame in two parts is joined and written as one record, the path
TLS always had.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Final
from typing import TypeVar

__all__ = ["Transport", "PlainTransport", "TLSTransport", "transport_for", "DONTWAIT"]

#: The flag of a ``send`` that never blocks (0 where the platform has none).
DONTWAIT: Final[int] = getattr(socket, "MSG_DONTWAIT", 0)
_T = TypeVar("_T")


def _wait(fd: int, events: int, timeout: float | None) -> bool:
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))


class Transport:
    """The interface; see the module docstring.

    :meth:`recv`, :meth:`recv_into` and :meth:`wait_readable` belong to the
    reading thread (one reader at a time) and block. :meth:`send_nowait` and
    :meth:`shutdown` may be called from any thread and never block.
    :meth:`send_all` blocks, and is for writes before the send queue takes over
    (the 101).
    """

    sock: socket.socket
    fileno: int
    #: The socket itself when :meth:`recv_into` is its ``recv_into`` and
    #: :meth:`send_nowait` its ``send`` with :data:`DONTWAIT` (BlockingIOError
    #: meaning 0): the connection and its send queue then call the socket
    #: directly, one Python call fewer per read and per write. ``None`` for
    #: TLS, and for a subclass (which may override the methods).
    direct: socket.socket | None = None

    def recv(self, size: int) -> bytes:
        """Block until data arrives; ``b""`` at EOF. May raise :class:`OSError`. The reading thread only."""
        raise NotImplementedError

    def recv_into(self, buffer: memoryview) -> int:
        """Block until data arrives and write it into ``buffer``; 0 at EOF. May raise :class:`OSError`.

        The reading thread only.
        """
        raise NotImplementedError

    def send_nowait(self, data: bytes | memoryview) -> int:
        """Write what the socket takes now; 0 when it is full. Raises :class:`OSError` when broken.

        Any thread; never blocks. Concurrent calls are not ordered with each
        other: the send queue's lock serializes them.
        """
        raise NotImplementedError

    def send_parts_nowait(self, head: bytes | memoryview, body: bytes | memoryview) -> int:
        """Write ``head`` then ``body`` as one stream of bytes, what the socket takes now (0 when full).

        Returns the bytes written of the two together: a partial write may end
        inside either. Raises :class:`OSError` when broken. Any thread; never
        blocks; serialized by the send queue's lock as :meth:`send_nowait`.
        """
        raise NotImplementedError

    def wait_readable(self, timeout: float) -> bool:
        """Whether :meth:`recv` would return within ``timeout`` seconds. Blocks up to that; the reading thread only."""
        raise NotImplementedError

    def send_all(self, data: bytes, timeout: float) -> None:
        """Write all of ``data``; raises :class:`OSError` (:class:`TimeoutError` when the socket stays full).

        Blocks: each time the socket is full it waits at most ``timeout``
        seconds for room. Not to be mixed with other writers: the handshake's
        thread writes the 101 with it before the send queue is released.
        """
        view = memoryview(data)
        while view:
            sent = self.send_nowait(view)
            view = view[sent:]
            if view and not _wait(self.fileno, select.POLLOUT, timeout):
                raise TimeoutError("the socket stayed full")

    def shutdown(self) -> None:
        """Shut the TCP connection down both ways (wakes a blocked :meth:`recv`). Thread-safe; never blocks."""
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass


class PlainTransport(Transport):
    """A plain TCP socket, left in blocking mode: reads block, writes use ``MSG_DONTWAIT``.

    Threading and blocking as documented on :class:`Transport`.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        self.sock = sock
        self.fileno = sock.fileno()
        self.direct = sock if type(self) is PlainTransport else None

    def recv(self, size: int) -> bytes:
        """:meth:`Transport.recv`: one blocking ``recv``. The reading thread only."""
        return self.sock.recv(size)

    def recv_into(self, buffer: memoryview) -> int:
        """:meth:`Transport.recv_into`: one blocking ``recv_into``. The reading thread only."""
        return self.sock.recv_into(buffer)

    def send_nowait(self, data: bytes | memoryview) -> int:
        """:meth:`Transport.send_nowait`: one ``send`` with ``MSG_DONTWAIT``. Any thread; never blocks."""
        try:
            return self.sock.send(data, DONTWAIT)
        except BlockingIOError:
            return 0

    def send_parts_nowait(self, head: bytes | memoryview, body: bytes | memoryview) -> int:
        """:meth:`Transport.send_parts_nowait`: one ``sendmsg`` with ``MSG_DONTWAIT``. Any thread; never blocks."""
        try:
            return self.sock.sendmsg((head, body), (), DONTWAIT)
        except BlockingIOError:
            return 0

    def wait_readable(self, timeout: float) -> bool:
        """:meth:`Transport.wait_readable`: a ``poll``. Blocks up to ``timeout``; the reading thread only."""
        return _wait(self.fileno, select.POLLIN, timeout)


class TLSTransport(Transport):
    """An ``SSLSocket`` switched to non-blocking mode.

    Every call into the ``SSL`` object (reads, writes, shutdown) is made under
    one lock, which is never held while a read waits for the socket; so the
    threading and blocking are as documented on :class:`Transport`.
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fileno = sock.fileno()
        # Serializes every call into the SSL object (reads, writes, shutdown).
        self._lock = threading.Lock()

    def recv(self, size: int) -> bytes:
        """:meth:`Transport.recv`: blocks (polling, outside the lock) until TLS data is decrypted or EOF."""
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        return self._read(lambda: sock.recv(size), b"")

    def recv_into(self, buffer: memoryview) -> int:
        """:meth:`Transport.recv_into`: blocks (polling, outside the lock) until TLS data is decrypted or EOF."""
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        return self._read(lambda: sock.recv_into(buffer), 0)

    def _read(self, read: Callable[[], _T], eof: _T) -> _T:
        """Call ``read`` under the lock until it does not want to wait; ``eof`` on a TLS close."""
        while True:
            with self._lock:
                try:
                    return read()
                except ssl.SSLWantReadError:
                    events = select.POLLIN
                except ssl.SSLWantWriteError:
                    events = select.POLLOUT
                except ssl.SSLZeroReturnError:
                    return eof
                except ssl.SSLError as error:
                    raise ConnectionResetError(str(error)) from error
            _wait(self.fileno, events, None)

    def send_nowait(self, data: bytes | memoryview) -> int:
        """:meth:`Transport.send_nowait`: one non-blocking ``SSL`` write under the lock. Any thread; never blocks."""
        with self._lock:
            try:
                return self.sock.send(data)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return 0
            except ssl.SSLError as error:
                raise BrokenPipeError(str(error)) from error

    def send_parts_nowait(self, head: bytes | memoryview, body: bytes | memoryview) -> int:
        """:meth:`Transport.send_parts_nowait`: the parts joined, then :meth:`send_nowait`. Any thread; never blocks.

        ``SSLSocket`` has no ``sendmsg``: the copy buys one record (and one
        encryption call) per frame rather than two.
        """
        return self.send_nowait(b"".join((head, body)))

    def wait_readable(self, timeout: float) -> bool:
        """:meth:`Transport.wait_readable`: True at once if TLS data is pending, else a ``poll`` of up to ``timeout``.

        Blocks; the reading thread only.
        """
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        with self._lock:
            if sock.pending():
                return True
        return _wait(self.fileno, select.POLLIN, timeout)

    def shutdown(self) -> None:
        """:meth:`Transport.shutdown`, under the lock (briefly held). Thread-safe; never blocks."""
        with self._lock:
            super().shutdown()


def transport_for(sock: socket.socket) -> Transport:
    """The transport for a connected socket (TLS when it is an ``SSLSocket``); never blocks.

    Not thread-safe: it sets the socket's blocking mode, so call it once, before any I/O on the socket.
    """
    if isinstance(sock, ssl.SSLSocket):
        return TLSTransport(sock)
    return PlainTransport(sock)
