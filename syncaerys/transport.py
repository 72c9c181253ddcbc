"""Transports: how a connection reads and writes its socket, plain or TLS.

The reading thread blocks in :meth:`recv`; any thread may call
:meth:`send_nowait`, which never blocks and returns how many bytes the socket
took. A plain TCP socket stays in blocking mode and writes with
``MSG_DONTWAIT``; a TLS socket is switched to non-blocking mode and every call
into its ``SSL`` object is serialized by a lock, because OpenSSL does not allow
one ``SSL`` object to be used by two threads at once.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["Transport", "PlainTransport", "TLSTransport", "transport_for"]

_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_T = TypeVar("_T")


def _wait(fd: int, events: int, timeout: float | None) -> bool:
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))


class Transport:
    """The interface; see the module docstring."""

    sock: socket.socket
    fileno: int

    def recv(self, size: int) -> bytes:
        """Block until data arrives; ``b""`` at EOF. May raise :class:`OSError`."""
        raise NotImplementedError

    def recv_into(self, buffer: memoryview) -> int:
        """Block until data arrives and write it into ``buffer``; 0 at EOF. May raise :class:`OSError`."""
        raise NotImplementedError

    def send_nowait(self, data: bytes | memoryview) -> int:
        """Write what the socket takes now; 0 when it is full. Raises :class:`OSError` when broken."""
        raise NotImplementedError

    def wait_readable(self, timeout: float) -> bool:
        """Whether :meth:`recv` would return within ``timeout`` seconds."""
        raise NotImplementedError

    def send_all(self, data: bytes, timeout: float) -> None:
        """Write all of ``data``, waiting up to ``timeout`` seconds; raises :class:`OSError`."""
        view = memoryview(data)
        while view:
            sent = self.send_nowait(view)
            view = view[sent:]
            if view and not _wait(self.fileno, select.POLLOUT, timeout):
                raise TimeoutError("the socket stayed full")

    def shutdown(self) -> None:
        """Shut the TCP connection down both ways (wakes a blocked :meth:`recv`)."""
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass


class PlainTransport(Transport):
    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        self.sock = sock
        self.fileno = sock.fileno()

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def recv_into(self, buffer: memoryview) -> int:
        return self.sock.recv_into(buffer)

    def send_nowait(self, data: bytes | memoryview) -> int:
        try:
            return self.sock.send(data, _DONTWAIT)
        except BlockingIOError:
            return 0

    def wait_readable(self, timeout: float) -> bool:
        return _wait(self.fileno, select.POLLIN, timeout)


class TLSTransport(Transport):
    def __init__(self, sock: ssl.SSLSocket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fileno = sock.fileno()
        # Serializes every call into the SSL object (reads, writes, shutdown).
        self._lock = threading.Lock()

    def recv(self, size: int) -> bytes:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        return self._read(lambda: sock.recv(size), b"")

    def recv_into(self, buffer: memoryview) -> int:
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
        with self._lock:
            try:
                return self.sock.send(data)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return 0
            except ssl.SSLError as error:
                raise BrokenPipeError(str(error)) from error

    def wait_readable(self, timeout: float) -> bool:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        with self._lock:
            if sock.pending():
                return True
        return _wait(self.fileno, select.POLLIN, timeout)

    def shutdown(self) -> None:
        with self._lock:
            super().shutdown()


def transport_for(sock: socket.socket) -> Transport:
    """The transport for a connected socket (TLS when it is an ``SSLSocket``)."""
    if isinstance(sock, ssl.SSLSocket):
        return TLSTransport(sock)
    return PlainTransport(sock)
