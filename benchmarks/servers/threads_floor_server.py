"""The floor of the thread-per-client model: the least a thread per client can do per message.

Not a WebSocket server to use: it answers the load generator's handshake,
reads each frame with blocking ``recv`` calls on the client's own thread,
unmasks it with one big-integer XOR and writes the reply, and nothing else
(no limits, no control frames, no fragmentation, no close handshake, no
UTF-8 check). The blocking work runs on the client's thread, as in
syncaerys. Run like the other servers, under the same process settings as
``syncaerys.run()`` (one CPU is the runner's ``--server-cpus``; the switch
interval and ``SCHED_BATCH`` are applied here), it measures what the
thread-per-client model costs by itself: a server built on it cannot go
faster than this, whatever its protocol code does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import sys
import threading

import _common

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def header(opcode: int, size: int) -> bytes:
    if size < 126:
        return struct.pack("!BB", 0x80 | opcode, size)
    if size < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, size)
    return struct.pack("!BBQ", 0x80 | opcode, 127, size)


def serve_client(sock: socket.socket, endpoint: Broadcaster) -> None:
    try:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                return
            request += chunk
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        endpoint.add(sock)
        while True:
            first, second = read_exactly(sock, 2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", read_exactly(sock, 2))
            elif size == 127:
                (size,) = struct.unpack("!Q", read_exactly(sock, 8))
            mask = read_exactly(sock, 4)
            masked = read_exactly(sock, size)
            keys = (mask * (size // 4 + 1))[:size]
            payload = (int.from_bytes(masked, "little") ^ int.from_bytes(keys, "little")).to_bytes(size, "little")
            if opcode == 8:
                return
            if opcode == 1:
                text = payload.decode()
                if _common.is_block(text):
                    payload = _common.block(text).encode()
                else:
                    command = _common.parse_broadcast(text)
                    if command is not None:
                        endpoint.broadcast(*command)
                        continue
            sock.sendall(header(opcode, len(payload)) + payload)
    except (ConnectionError, OSError, StopIteration):
        pass
    finally:
        endpoint.remove(sock)
        sock.close()


class Broadcaster:
    """The open sockets, for the broadcast command: the frame is built once and sent to each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def remove(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def broadcast(self, count: int, text: str) -> None:
        payload = text.encode()
        frame = header(1, len(payload)) + payload
        with self._lock:
            targets = list(self._sockets)
        for _ in range(count):
            for sock in targets:
                try:
                    sock.sendall(frame)
                except OSError:
                    pass


def main() -> None:
    port = _common.setup()
    if not os.environ.get("BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(0.05)  # syncaerys.run()'s default
    if hasattr(os, "SCHED_BATCH"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    endpoint = Broadcaster()
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_client, args=(sock, endpoint), daemon=True).start()


if __name__ == "__main__":
    main()
