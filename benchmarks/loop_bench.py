"""The whole per-message path of one echo, in one thread: syncaerys against the floor's loop (CPU time).

    python benchmarks/loop_bench.py [--messages N]

``hotpath_bench.py`` times the pieces; this times all of them together, as the
connection runs them, with no load generator and no GIL hand-off in between.
The server's ``on_data`` echoes, then, still on the client's thread, reads the
echo from the client's socket and writes the next frame, so the connection's
next read finds it at once: one thread runs the server's whole path (the read,
the parse, ``Message``, ``Endpoint.send``, the send queue, the future) and the
client's one ``recv`` and one ``send``. The same is timed for a bare
``send``/``recv`` round on a TCP pair (what every server pays) and for the
``threads-floor`` server's loop (``servers/threads_floor_server.py``). It
prints microseconds of the thread's CPU time (user and system: the loopback's
work is done in the sending thread) per message, which time stolen by other
guests of a VM does not inflate; the difference to the floor's loop is what
syncaerys's own code costs per message. Pin it to one CPU (``taskset -c 0``);
loopback only.

With ``--ring N`` (N >= 2) the same path runs on N connections passed round
in a ring: each connection's thread, once it has echoed and read its echo,
writes the next frame on the next connection's client socket and goes back to
its read, so one thread runs at a time and every message is a hand-off to
another thread (a context switch and the GIL changing hands, with no thread
waiting for it). The floor's loop runs the same ring on N threads of its own.
The CPU time is the process's. A ring of 2 against the one-thread loop is what
a hand-off between threads costs; a ring of 100 against a ring of 2 is what
touching 100 connections' memory in turn costs (each thread finds its state
out of the CPU's caches), the part of the gap to the floor that appears only
with many clients.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).with_name("servers")))

import _common
from syncaerys_server import bench_gateway
from threads_floor_server import header
from threads_floor_server import unmask

import syncaerys
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Websocket

KEY = b"\x01\x02\x03\x04"
PAYLOAD = b"x" * 32
FRAME = bytes((0x81, 0x80 | len(PAYLOAD))) + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(PAYLOAD))
WARMUP = 1000
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Tally:
    """Counts the messages of a run: the clock is read after the warm-up and at the last message.

    Not locked: in every loop here one message is counted at a time (a ring's next thread is
    woken by the frame written after the count).
    """

    def __init__(self, messages: int, clock: Callable[[], float]) -> None:
        self.messages = messages
        self.clock = clock
        self.count = 0
        self.started = 0.0
        self.elapsed = 0.0
        self.done = threading.Event()

    def counted(self) -> bool:
        """Count one message; True once the last has been."""
        self.count += 1
        if self.count == WARMUP:
            self.started = self.clock()
        elif self.count == WARMUP + self.messages:
            self.elapsed = self.clock() - self.started
            self.done.set()
            return True
        return False

    def per_message(self) -> float:
        """Microseconds of the clock per message, once done."""
        return self.elapsed / self.messages * 1e6


class Loop(Websocket):
    """Echoes, then plays the client's part of the next round trip on this same thread."""

    def __init__(self, messages: int) -> None:
        self.tally = Tally(messages, time.thread_time)
        self.client: socket.socket | None = None

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: Message) -> None:
        self.endpoint.send(message.result(), client_id)
        if self.tally.counted():
            return
        assert self.client is not None
        self.client.recv(100)
        self.client.send(FRAME)


def upgraded_client(port: int) -> socket.socket:
    """A raw client socket on 127.0.0.1:``port``, its upgrade done (exits if it is refused)."""
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(UPGRADE)
    head = b""
    while b"\r\n\r\n" not in head:
        head += client.recv(4096)
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"no upgrade: {head[:80]!r}")
    return client


def syncaerys_loop(messages: int) -> float:
    handler = Loop(messages)
    with syncaerys.Server(bench_gateway(handler), host="127.0.0.1", port=0) as server:
        client = upgraded_client(server.port)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handler.client = client
        client.send(FRAME)
        if not handler.tally.done.wait(600):
            raise SystemExit("the loop did not finish in 600 s")
        client.close()
    return handler.tally.per_message()


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client, server


def bare_loop(messages: int) -> float:
    client, server = tcp_pair()
    reply = b"y" * (len(PAYLOAD) + 2)
    started = time.thread_time()
    for _ in range(messages):
        server.send(reply)
        client.recv(100)
        client.send(FRAME)
        server.recv(100)
    elapsed = time.thread_time() - started
    client.close()
    server.close()
    return elapsed / messages * 1e6


def floor_reply(server: socket.socket, buffer: bytearray, view: memoryview) -> None:
    """threads_floor_server's handle for the one small frame just read into ``buffer``."""
    size = buffer[1] & 0x7F
    payload = unmask(view[6 : 6 + size], view[2:6])
    text = payload.decode()
    if not _common.is_block(text) and _common.parse_broadcast(text) is None:
        server.sendall(header(1, len(payload)) + payload)


def floor_loop(messages: int) -> float:
    """threads_floor_server's read_frames and handle for one small frame per read."""
    client, server = tcp_pair()
    buffer = bytearray(1 << 16)
    view = memoryview(buffer)
    client.send(FRAME)
    started = time.thread_time()
    for _ in range(messages):
        server.recv_into(view)
        floor_reply(server, buffer, view)
        client.recv(100)
        client.send(FRAME)
    elapsed = time.thread_time() - started
    client.close()
    server.close()
    return elapsed / messages * 1e6


class Ring(Websocket):
    """Echoes, reads the echo on the client's side, then writes the next frame on the next connection's client."""

    def __init__(self, messages: int) -> None:
        self.tally = Tally(messages, time.process_time)
        self.clients: dict[int, socket.socket] = {}
        self.next: dict[int, socket.socket] = {}
        self.opened: list[int] = []
        self.opened_changed = threading.Condition()

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_open(self, client_id: int, handshake_data: object) -> None:
        with self.opened_changed:
            self.opened.append(client_id)
            self.opened_changed.notify_all()

    def on_data(self, client_id: int, message: Message) -> None:
        self.endpoint.send(message.result(), client_id)
        if self.tally.counted():
            return
        self.clients[client_id].recv(100)
        self.next[client_id].send(FRAME)


def _has_opened(handler: Ring, count: int) -> bool:
    return len(handler.opened) >= count


def syncaerys_ring(messages: int, size: int) -> float:
    handler = Ring(messages)
    with syncaerys.Server(bench_gateway(handler), host="127.0.0.1", port=0) as server:
        sockets = []
        for index in range(size):
            client = upgraded_client(server.port)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets.append(client)
            with handler.opened_changed:
                if not handler.opened_changed.wait_for(partial(_has_opened, handler, index + 1), 30):
                    raise SystemExit("a ring client was not opened in 30 s")
        ids = handler.opened
        handler.clients = dict(zip(ids, sockets, strict=True))
        handler.next = {ids[i]: sockets[(i + 1) % size] for i in range(size)}
        sockets[0].send(FRAME)
        if not handler.tally.done.wait(600):
            raise SystemExit("the ring did not finish in 600 s")
        for client in sockets:
            client.close()
    return handler.tally.per_message()


class FloorRing:
    """The floor's ring: floor_loop's body on one thread per connection, counting the messages together."""

    def __init__(self, messages: int, size: int) -> None:
        self.tally = Tally(messages, time.process_time)
        self.pairs = [tcp_pair() for _ in range(size)]

    def serve(self, index: int) -> None:
        client, server = self.pairs[index]
        next_client = self.pairs[(index + 1) % len(self.pairs)][0]
        buffer = bytearray(1 << 16)
        view = memoryview(buffer)
        while True:
            try:
                if not server.recv_into(view):
                    return
            except OSError:  # shut down at the end of the run
                return
            floor_reply(server, buffer, view)
            if self.tally.counted():
                return
            client.recv(100)
            next_client.send(FRAME)


def floor_ring(messages: int, size: int) -> float:
    ring = FloorRing(messages, size)
    threads = [threading.Thread(target=ring.serve, args=(index,), daemon=True) for index in range(size)]
    for thread in threads:
        thread.start()
    ring.pairs[0][0].send(FRAME)
    if not ring.tally.done.wait(600):
        raise SystemExit("the floor's ring did not finish in 600 s")
    for _, server in ring.pairs:
        server.shutdown(socket.SHUT_RDWR)
    for thread in threads:
        thread.join(30)
    for client, server in ring.pairs:
        client.close()
        server.close()
    return ring.tally.per_message()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="the median of this many runs of each")
    parser.add_argument("--ring", type=int, default=0, help="pass the messages round N connections (N >= 2)")
    args = parser.parse_args()
    rows: dict[str, Callable[[int], float]]
    if args.ring:
        if args.ring < 2:
            parser.error("--ring takes 2 or more connections")
        rows = {
            "threads-floor's loop": lambda n: floor_ring(n, args.ring),
            "syncaerys": lambda n: syncaerys_ring(n, args.ring),
        }
        print(f"a ring of {args.ring} connections, the process's CPU time", flush=True)
    else:
        rows = {"bare send/recv round": bare_loop, "threads-floor's loop": floor_loop, "syncaerys": syncaerys_loop}
    results = {}
    for name, run in rows.items():
        times = sorted(run(args.messages) for _ in range(args.rounds))
        results[name] = times[len(times) // 2]
        print(f"{name:24} {results[name]:7.2f} µs per message  ({times[0]:.2f}-{times[-1]:.2f})", flush=True)
    own = results["syncaerys"] - results["threads-floor's loop"]
    print(f"{'syncaerys less the floor':24} {own:7.2f} µs per message")


if __name__ == "__main__":
    main()
