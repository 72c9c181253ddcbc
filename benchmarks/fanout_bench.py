"""One broadcast's fan-out, in one thread: syncaerys against the floor's loop (CPU time per delivery).

    python benchmarks/fanout_bench.py [--clients N] [--broadcasts N] [--rounds N]

``loop_bench.py`` does this for an echo. Here ``N`` clients connect to a real
server on 127.0.0.1 and stay idle (their sockets' buffers take every copy);
the thread that broadcasts is timed: ``Endpoint.broadcast`` of 64 bytes (the
encode, and for each client the send queue and its ``send``), against the
``threads-floor`` server's broadcast (``servers/threads_floor_server.py``: one
``send`` of the same frame per socket) over sockets of its own. It prints the
thread's user and system microseconds per delivery (``RUSAGE_THREAD``: the
loopback's receive work is the sender's system time, the same for both), and
syncaerys's user time above the floor's. Pin it to one CPU (``taskset -c 0``);
it needs two fds per client.
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).with_name("servers")))

from loop_bench import upgraded_client
from syncaerys_server import bench_gateway
from threads_floor_server import header

import syncaerys
from syncaerys import Endpoint
from syncaerys import Websocket

PAYLOAD = "x" * 64


class Idle(Websocket):
    """Counts the clients in; the benchmark broadcasts through its endpoint."""

    def __init__(self) -> None:
        self.opened = threading.Semaphore(0)

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_open(self, client_id: int, handshake_data: object) -> None:
        self.opened.release()


def drain(clients: list[socket.socket]) -> None:
    """Empty the clients' receive buffers, so that every copy of the next round fits."""
    for client in clients:
        try:
            while client.recv(1 << 16, socket.MSG_DONTWAIT):
                pass
        except BlockingIOError:
            pass


def per_delivery(broadcast: Callable[[], object], broadcasts: int, clients: int) -> tuple[float, float]:
    """The user and system µs of this thread per delivery over ``broadcasts`` calls."""
    before = resource.getrusage(resource.RUSAGE_THREAD)
    for _ in range(broadcasts):
        broadcast()
    after = resource.getrusage(resource.RUSAGE_THREAD)
    deliveries = broadcasts * clients
    return (
        (after.ru_utime - before.ru_utime) / deliveries * 1e6,
        (after.ru_stime - before.ru_stime) / deliveries * 1e6,
    )


def median_row(samples: list[tuple[float, float]]) -> tuple[float, float]:
    users = sorted(s[0] for s in samples)
    systems = sorted(s[1] for s in samples)
    return users[len(users) // 2], systems[len(systems) // 2]


def syncaerys_fanout(clients: int, broadcasts: int, rounds: int) -> tuple[float, float]:
    handler = Idle()
    with syncaerys.Server(bench_gateway(handler), host="127.0.0.1", port=0, max_connections=None) as server:
        sockets = []
        for _ in range(clients):
            sockets.append(upgraded_client(server.port))
        for _ in range(clients):
            if not handler.opened.acquire(timeout=60):
                raise SystemExit("the clients did not all open within 60 s")
        handler.endpoint.broadcast(PAYLOAD).result(60)  # warm-up
        samples = []
        for _ in range(rounds):
            drain(sockets)
            samples.append(per_delivery(lambda: handler.endpoint.broadcast(PAYLOAD), broadcasts, clients))
        for client in sockets:
            client.close()
    return median_row(samples)


def floor_fanout(clients: int, broadcasts: int, rounds: int) -> tuple[float, float]:
    """threads_floor_server's broadcast: the frame built once, one ``send`` per socket."""
    with socket.create_server(("127.0.0.1", 0), backlog=clients) as listener:
        pairs = []
        for _ in range(clients):
            client = socket.create_connection(listener.getsockname())
            server = listener.accept()[0]
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the floor server and syncaerys
            pairs.append((client, server))
    data = PAYLOAD.encode()
    targets = [server for _, server in pairs]

    def broadcast() -> None:
        frame = header(1, len(data)) + data
        for target in targets:
            target.send(frame)

    samples = []
    for _ in range(rounds):
        drain([client for client, _ in pairs])
        samples.append(per_delivery(broadcast, broadcasts, clients))
    for pair in pairs:
        for sock in pair:
            sock.close()
    return median_row(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=100, help="per round (each copy must fit the buffers)")
    parser.add_argument("--rounds", type=int, default=5, help="the median of this many rounds")
    args = parser.parse_args()
    floor = floor_fanout(args.clients, args.broadcasts, args.rounds)
    ours = syncaerys_fanout(args.clients, args.broadcasts, args.rounds)
    for name, (user, system) in (("threads-floor's loop", floor), ("syncaerys", ours)):
        print(f"{name:24} {user:7.2f} µs user  {system:7.2f} µs system per delivery", flush=True)
    print(f"{'syncaerys less the floor':24} {ours[0] - floor[0]:7.2f} µs user per delivery")


if __name__ == "__main__":
    main()
