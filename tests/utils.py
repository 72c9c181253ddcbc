"""Test helpers: a server in a context manager, a recording handler, a raw client.

Every wait here is bounded and waits on an event or a condition, never a
bare sleep. Timeouts scale with SYNCAERYS_TESTS_TIMEOUT_FACTOR.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import syncaerys
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Websocket

#: One second, scaled for slow machines.
SECOND = float(os.environ.get("SYNCAERYS_TESTS_TIMEOUT_FACTOR", "1"))
#: A generous bound for things that should happen "at once".
PROMPTLY = 5 * SECOND


@contextlib.contextmanager
def serve(handler: object, **options: Any) -> Iterator[syncaerys.Server]:
    """Run ``websocket(handler, **options)`` on 127.0.0.1, a free port, in a thread."""
    gateway = syncaerys.websocket(handler, **options)
    with syncaerys.Server(gateway, host="127.0.0.1", port=0) as server:
        yield server


@contextlib.contextmanager
def werkzeug_serving(app: Any) -> Iterator[int]:
    """Serve the WSGI ``app`` with werkzeug's own threaded server (``app.run``'s) on a free port."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join()


def url(server: syncaerys.Server, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


class Recorder(Websocket):
    """Records every callback as a tuple; tests wait for the ones they expect.

    ``on_data`` echoes ``message.result()`` by default; pass ``on_data`` to do
    something else (it gets ``(recorder, client_id, message)``).
    """

    def __init__(
        self,
        on_data: Callable[[Recorder, int, Message], None] | None = None,
        handshake: Callable[..., Any] | None = None,
    ) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.endpoint: Endpoint
        self._condition = threading.Condition()
        self._on_data = on_data
        self._handshake = handshake

    def record(self, *event: Any) -> None:
        with self._condition:
            self.events.append(event)
            self._condition.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[Any, ...]]], Any], timeout: float = PROMPTLY) -> Any:
        """Wait until ``predicate(events)`` is truthy; return it, or fail."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                result = predicate(self.events)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; events so far: {self.events!r}")
                self._condition.wait(remaining)

    def wait_event(self, kind: str, timeout: float = PROMPTLY) -> tuple[Any, ...]:
        """Wait for the first event named ``kind`` and return it."""
        return self.wait_for(lambda events: next((e for e in events if e[0] == kind), None), timeout)  # type: ignore[no-any-return]

    def kinds(self) -> list[str]:
        with self._condition:
            return [e[0] for e in self.events]

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.record("start")

    def on_handshake(self, request: Any, response: Any, **route_args: Any) -> Any:
        self.record("handshake", request.path)
        if self._handshake is not None:
            return self._handshake(request, response, **route_args)
        return None

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        self.record("open", client_id, handshake_data)

    def on_data(self, client_id: int, message: Message) -> None:
        if self._on_data is not None:
            self._on_data(self, client_id, message)
            return
        data = message.result()
        self.record("data", client_id, data)
        self.endpoint.send(data, client_id)

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        self.record("close", client_id, code, reason)

    def on_stop(self) -> None:
        self.record("stop")


# -- a raw client for protocol abuse


def mask_payload(payload: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def client_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, masked: bool = True, rsv: int = 0, key: bytes = b"abcd"
) -> bytes:
    """A client-to-server frame (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if masked:
        return header + key + mask_payload(payload, key)
    return header + payload


class RawClient:
    """A WebSocket client on a plain socket, for sending what real clients won't."""

    def __init__(self, port: int, path: str = "/", headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY)
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode("latin-1")

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("EOF before " + repr(marker))
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("EOF inside a frame")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: Any) -> None:
        self.sock.sendall(client_frame(opcode, payload, **kwargs))

    def recv_frame(self) -> tuple[int, bool, bytes]:
        """The next server frame as (opcode, fin, payload); server frames are unmasked."""
        first, second = self._read_exact(2)
        assert not second & 0x80, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        return first & 0x0F, bool(first & 0x80), self._read_exact(length)

    def recv_close(self, *, skip_data: bool = True) -> tuple[int | None, str]:
        """Read frames until a close frame; return its (code, reason)."""
        while True:
            opcode, _, payload = self.recv_frame()
            if opcode == 0x8:
                if not payload:
                    return None, ""
                return int.from_bytes(payload[:2], "big"), payload[2:].decode()
            if not skip_data and opcode < 0x8:
                raise AssertionError(f"data frame before the close: {opcode} {payload[:50]!r}")

    def recv_until_eof(self) -> bytes:
        """Everything the server still writes until it closes TCP."""
        data = self.buffer
        self.buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SmallWindowClient(RawClient):
    """A raw client with a tiny receive buffer (set before connecting) that reads only when told."""

    def __init__(self, port: int, rcvbuf: int = 4096) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(PROMPTLY)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = self._read_until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode("latin-1")


def open_fds() -> dict[str, str]:
    """This process's open descriptors and what they point to."""
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor of the listing itself
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return fds


def http_request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes as an HTTP request; return (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, body


def wait_until(predicate: Callable[[], Any], timeout: float = PROMPTLY, interval: float = 0.01) -> Any:
    """Poll ``predicate`` (for state with no event to wait on, e.g. thread counts)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (for servers in subprocesses)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY):
            return True
    except OSError:
        return False
