"""PlainTransport over a real socketpair: non-blocking writes and a broken peer."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from syncaerys.client.transport import PlainTransport
from tests.utils import PROMPTLY


@pytest.fixture
def transport() -> Iterator[tuple[PlainTransport, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.settimeout(PROMPTLY)
    yield PlainTransport(ours), theirs
    ours.close()
    theirs.close()


def test_send_nowait_writes_what_fits_then_returns_zero(transport: tuple[PlainTransport, socket.socket]) -> None:
    ours, theirs = transport
    assert ours.send_nowait(b"hello") == 5
    assert theirs.recv(5) == b"hello"
    total = 0
    while (sent := ours.send_nowait(memoryview(b"x" * 65536))) > 0:
        total += sent
        assert total < 10 * 1024 * 1024, "the socket never filled"
    assert sent == 0 and total > 0
    # Nothing blocked, and the reads see the bytes in order.
    assert theirs.recv(1) == b"x"


def test_send_nowait_raises_when_the_peer_is_gone(transport: tuple[PlainTransport, socket.socket]) -> None:
    ours, theirs = transport
    theirs.close()
    with pytest.raises(OSError):
        for _ in range(3):  # the first write after the close may still be accepted
            ours.send_nowait(b"x")


def test_wait_readable_and_shutdown_wake_a_reader(transport: tuple[PlainTransport, socket.socket]) -> None:
    ours, theirs = transport
    assert not ours.wait_readable(0.01)
    theirs.sendall(b"ab")
    assert ours.wait_readable(PROMPTLY)
    buffer = memoryview(bytearray(8))
    assert ours.recv_into(buffer) == 2
    ours.shutdown()
    assert ours.recv_into(buffer) == 0  # EOF after our own shutdown


class OverridingTransport(PlainTransport):
    """A subclass may override any method (tests/test_memory.py's records its reads): it gets no ``direct``."""


def test_only_a_plain_transport_offers_its_socket_for_direct_calls() -> None:
    """``direct`` lets the connection and the send queue skip the transport's methods; a subclass keeps them."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert PlainTransport(ours).direct is ours
        assert OverridingTransport(ours).direct is None
