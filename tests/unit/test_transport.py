"""PlainTransport over a real socketpair, with the C non-blocking send and with the fallback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import syncaerys.transport
from syncaerys.transport import PlainTransport
from tests.utils import PROMPTLY

try:
    from syncaerys import _speedups
except ImportError:  # pragma: no cover - a build without the C extension
    _speedups = None  # type: ignore[assignment]


@pytest.fixture(params=["c", "python"])
def transport(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PlainTransport, socket.socket]]:
    if request.param == "c" and syncaerys.transport._c_send_nowait is None:
        pytest.skip("syncaerys._speedups is not built")
    if request.param == "python":
        monkeypatch.setattr(syncaerys.transport, "_c_send_nowait", None)
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


def test_send_nowait_raises_when_the_peer_is_gone(transport: tuple[PlainTransport, socket.socket]) -> None:
    ours, theirs = transport
    theirs.close()
    with pytest.raises(OSError):
        for _ in range(3):  # the first write after the close may still be accepted
            ours.send_nowait(b"x")


@pytest.mark.skipif(_speedups is None, reason="syncaerys._speedups is not built")
def test_c_recv_nowait_into() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        buffer = bytearray(8)
        assert _speedups.recv_nowait_into(ours.fileno(), buffer) == -1  # nothing yet: no waiting
        theirs.sendall(b"abc")
        assert _speedups.recv_nowait_into(ours.fileno(), buffer) == 3 and buffer[:3] == b"abc"
        theirs.close()
        assert _speedups.recv_nowait_into(ours.fileno(), buffer) == 0  # EOF
        with pytest.raises(ValueError):
            _speedups.recv_nowait_into(-1, buffer)
        with pytest.raises(TypeError):
            _speedups.send_nowait(ours.fileno(), "not bytes")
