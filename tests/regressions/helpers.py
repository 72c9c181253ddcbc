"""Helpers shared by the regression, fuzz and abuse tests (on top of tests/utils.py).

Every wait is bounded; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

import syncaerys
from syncaerys.client.sendqueue import shared_flusher
from syncaerys.client.timer import shared_timer
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import open_fds
from tests.utils import wait_until

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Process-wide threads that start with the first client and then stay.
PROCESS_WIDE_THREADS = {"syncaerys-timer", "syncaerys-flusher"}

Frame = tuple[int, bool, bytes]


def nth_event(recorder: Recorder, kind: str, n: int, timeout: float = PROMPTLY) -> tuple[Any, ...]:
    """Wait for the ``n``-th (0-based) event named ``kind`` and return it."""

    def find(events: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
        matching = [e for e in events if e[0] == kind]
        return matching[n] if len(matching) > n else None

    event: tuple[Any, ...] = recorder.wait_for(find, timeout)
    return event


def count_events(recorder: Recorder, kind: str) -> int:
    return len([e for e in recorder.events if e[0] == kind])


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def parse_server_frames(data: bytes) -> list[Frame]:
    """Split a server-to-client byte stream into (opcode, fin, payload) frames.

    Raises AssertionError on a masked frame or on bytes that do not form whole
    frames (e.g. an HTTP response written after the close frame).
    """
    frames: list[Frame] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 2:
            raise AssertionError(f"trailing bytes after frame {len(frames)}: {data[pos:]!r}")
        first, second = data[pos], data[pos + 1]
        if second & 0x80:
            raise AssertionError(f"masked server frame at offset {pos}: {data[pos : pos + 40]!r}")
        length = second & 0x7F
        header = 2
        if length == 126:
            (length,) = struct.unpack("!H", data[pos + 2 : pos + 4])
            header = 4
        elif length == 127:
            (length,) = struct.unpack("!Q", data[pos + 2 : pos + 10])
            header = 10
        if first & 0x70 or first & 0x0F not in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
            raise AssertionError(f"not a frame at offset {pos}: {data[pos : pos + 40]!r}")
        end = pos + header + length
        if end > len(data):
            raise AssertionError(f"truncated frame at offset {pos}: {data[pos : pos + 40]!r}")
        frames.append((first & 0x0F, bool(first & 0x80), data[pos + header : end]))
        pos = end
    return frames


def close_code_of(payload: bytes) -> tuple[int | None, str]:
    if not payload:
        return None, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8")


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def assert_no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, f"{len(errors)} records at ERROR or above, e.g. {errors[:3]}"


@contextlib.contextmanager
def werkzeug_server(handler: object, **options: object) -> Iterator[int]:
    """The gateway on werkzeug's own threaded dev server (what ``flask run`` uses); yields the port."""
    gateway = syncaerys.websocket(handler, **options)  # type: ignore[arg-type]
    server = make_server("127.0.0.1", 0, gateway, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="werkzeug-dev-server", daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(PROMPTLY)
        server.server_close()
        gateway.stop()


@contextlib.contextmanager
def syncaerys_server(handler: object, **options: object) -> Iterator[int]:
    """The gateway on syncaerys's own server; yields the port."""
    gateway = syncaerys.websocket(handler, **options)  # type: ignore[arg-type]
    with syncaerys.Server(gateway, host="127.0.0.1", port=0) as server:
        yield server.port


HOSTS = {"werkzeug": werkzeug_server, "syncaerys": syncaerys_server}


class ResourceBaseline:
    """Threads and descriptors of this process now; later, check nothing new is left.

    The process-wide timer and flusher are created first (their threads start
    lazily and then stay), so they are not counted as leaks.
    """

    def __init__(self) -> None:
        shared_timer()
        shared_flusher()
        self.threads = set(threading.enumerate())
        self.fds = open_fds()

    def new_threads(self) -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in self.threads and t.name not in PROCESS_WIDE_THREADS]

    def new_fds(self) -> dict[str, str]:
        return {fd: target for fd, target in open_fds().items() if fd not in self.fds}

    def assert_back(self, timeout: float = PROMPTLY) -> None:
        """Wait (polling, bounded: thread and fd counts have no event) until nothing new is left."""
        try:
            wait_until(lambda: not self.new_threads() and not self.new_fds(), timeout=timeout)
        except AssertionError:
            threads = sorted(t.name for t in self.new_threads())
            raise AssertionError(f"left behind: threads {threads}, descriptors {self.new_fds()}") from None
