"""The floor of the thread-per-client model: the least a thread per client can do per message.

Not a WebSocket server to use: it answers the load generator's handshake and
then, on the client's own thread, does one blocking ``recv_into`` a reused
buffer per read (each read drops and retakes the GIL once, as syncaerys's
reads do), takes every whole frame in what was read (a frame cut by the end
of a read waits in the buffer for the next one), unmasks it with one
big-integer XOR and writes the reply. A frame larger than the buffer is read
into a buffer of its own size, at an offset, until it is whole. Nothing else:
no limits, no control frames but close, no fragmentation, no close
handshake, no UTF-8 check. The blocking work runs on the client's thread, as
in syncaerys. Run like the other servers, under the same process settings as
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


#: The reused read buffer of each client (a read takes at most this much).
BUFFER_SIZE = 1 << 16


class Closed(Exception):
    """The client closed (a close frame) or the connection dropped."""


def unmask(data: bytes | bytearray | memoryview, key: bytes | bytearray | memoryview) -> bytes:
    size = len(data)
    keys = (bytes(key) * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(size, "little")


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
        read_frames(sock, endpoint)
    except (Closed, ConnectionError, OSError, StopIteration):
        pass
    finally:
        endpoint.remove(sock)
        sock.close()


def read_frames(sock: socket.socket, endpoint: Broadcaster) -> None:
    """Read into one reused buffer and take every whole frame in it, until the client leaves."""
    buf = bytearray(BUFFER_SIZE)
    view = memoryview(buf)
    have = 0  # buf[:have] is read and not yet taken
    while True:
        got = sock.recv_into(view[have:])
        if not got:
            raise Closed
        have += got
        pos = 0
        while have - pos >= 2:
            second = buf[pos + 1]
            size = second & 0x7F
            start = pos + 6
            if size == 126:
                start = pos + 8
                if have - pos < 4:
                    break
                size = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            elif size == 127:
                start = pos + 14
                if have - pos < 10:
                    break
                size = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            end = start + size
            if end > have:
                if end - pos > BUFFER_SIZE:
                    # Larger than the buffer: into a buffer of its own size, then on as before.
                    read_large(sock, endpoint, view[pos:have], start - pos, size)
                    pos = have = 0
                break
            handle(sock, endpoint, buf[pos] & 0x0F, unmask(view[start:end], view[start - 4 : start]))
            pos = end
        if pos:
            # Keep the start of a frame cut by the end of the read.
            buf[: have - pos] = view[pos:have]
            have -= pos


def read_large(sock: socket.socket, endpoint: Broadcaster, head: memoryview, start: int, size: int) -> None:
    """Read the rest of a frame larger than the buffer (``head`` is its start) into one buffer of its size."""
    frame = bytearray(start + size)
    view = memoryview(frame)
    view[: len(head)] = head
    have = len(head)
    while have < len(frame):
        got = sock.recv_into(view[have:])
        if not got:
            raise Closed
        have += got
    handle(sock, endpoint, frame[0] & 0x0F, unmask(view[start:], view[start - 4 : start]))


def handle(sock: socket.socket, endpoint: Broadcaster, opcode: int, payload: bytes) -> None:
    if opcode == 8:
        raise Closed
    if opcode == 1:
        text = payload.decode()
        if _common.is_block(text):
            payload = _common.block(text).encode()
        else:
            command = _common.parse_broadcast(text)
            if command is not None:
                endpoint.broadcast(*command)
                return
    sock.sendall(header(opcode, len(payload)) + payload)


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
