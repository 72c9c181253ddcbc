#!/usr/bin/env python3
"""Soak test: N clients for T minutes, echo and broadcast, every message checked (not run in CI).

The server runs as a subprocess (this script with ``--serve``): a syncaerys
echo/broadcast handler on syncaerys's own server. The clients run in this
process on one asyncio loop (websockets' asyncio client), so that 1,000
clients cost one thread here. Each message carries its kind, its sender, a
per-sender sequence number and a CRC-32 of the rest:

* an echo message goes back to its sender only: each client must get its own
  echoes back complete, in order, once;
* a broadcast message goes to every client: each client must get every
  sender's broadcasts complete, in that sender's order, once.

At the end the sending stops, the script waits (bounded) for what is still in
flight, and reports messages sent, expected, received, lost, corrupt and out
of order, plus the server process's threads, file descriptors and RSS (from
``/proc/PID``) at the start (no client), with every client connected, at the
peak, and after the clients have gone. With ``--rounds`` the clients connect,
soak and disconnect several times against the same server, which tells
growth from allocator retention. It exits non-zero if anything was lost or
corrupt, a client was closed unexpectedly, or threads/fds did not return to
the start figures (the process-wide flusher thread aside, which starts with
the first full socket and stays).

    python benchmarks/soak.py --clients 200 --minutes 1
    python benchmarks/soak.py --clients 1000 --minutes 10          # the long run
    python benchmarks/soak.py --clients 200 --minutes 1 --rounds 5  # growth from round to round?
    python benchmarks/soak.py --clients 1000 --minutes 10 --compression

With ``--server-stats SECONDS`` the server also prints, every SECONDS, its
count of gc-tracked objects and glibc's heap (``mallinfo2``: in use and free):
objects or bytes in use that keep growing are a leak, free bytes that keep
growing are the allocator holding on to fragments.

    python benchmarks/soak.py --clients 1000 --minutes 2 --server-stats 20

Every wait is bounded; the server is stopped (SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The shared flusher's thread may start during the run and then stays (one per process).
FLUSHER_THREAD = 1


# -- the server (a subprocess)


_MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2``: ``arena`` is the heap's size, ``uordblks`` in use, ``fordblks`` free."""

    _fields_ = [(name, ctypes.c_size_t) for name in (*_MALLINFO2_FIELDS, "keepcost")]


def report_stats(interval: float) -> None:
    """Print the server's gc object count and glibc heap every ``interval`` seconds (a daemon thread)."""
    import gc

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = _MallInfo2
    except (AttributeError, OSError):
        mallinfo2 = None  # not glibc 2.33+

    def run() -> None:
        started = time.monotonic()
        while True:
            time.sleep(interval)  # a periodic report: nothing to wait on
            line = f"  server stats at {time.monotonic() - started:5.0f}s: {len(gc.get_objects())} gc objects"
            if mallinfo2 is not None:
                info = mallinfo2()
                heap, used, free = (value / (1 << 20) for value in (info.arena, info.uordblks, info.fordblks))
                line += f", malloc heap {heap:.1f} MiB ({used:.1f} in use, {free:.1f} free)"
            print(line, file=sys.stderr, flush=True)

    threading.Thread(target=run, name="soak-stats", daemon=True).start()


def serve(port: int, max_connections: int, compression: bool, stats_interval: float | None = None) -> None:
    """Run the soak server until SIGTERM/SIGINT; prints ``ready <port>`` once listening."""
    import logging

    sys.path.insert(0, str(ROOT))
    import syncaerys
    from syncaerys import Endpoint
    from syncaerys import Message
    from syncaerys import Websocket
    from syncaerys.client.sendqueue import shared_flusher
    from syncaerys.client.timer import shared_timer

    logging.basicConfig(level=logging.WARNING, format="server %(levelname)s %(name)s: %(message)s")

    class Soak(Websocket):
        def on_start(self, endpoint: Endpoint) -> None:
            self.endpoint = endpoint

        def on_data(self, client_id: int, message: Message) -> None:
            data = message.result()
            if data[0] == "e":
                self.endpoint.send(data, client_id)
            else:
                self.endpoint.broadcast(data)

    # The process-wide timer thread and the flusher's selector and socketpair are
    # created now, so that the "start" figures include them; the flusher's
    # thread starts with the first socket that fills up (+1 thread, then stays).
    shared_timer().call_later(0, lambda: None)
    shared_flusher()
    gateway = syncaerys.websocket(Soak(), compression=compression)
    server = syncaerys.Server(gateway, host="127.0.0.1", port=port, max_connections=max_connections)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.serve_in_thread()
    if stats_interval:
        report_stats(stats_interval)
    print(f"ready {server.port}", flush=True)
    while not stop.wait(1.0):
        pass
    server.stop()


# -- server process figures


@dataclass
class Sample:
    threads: int
    fds: int
    rss_kib: int

    def __str__(self) -> str:
        return f"threads {self.threads:5d}  fds {self.fds:5d}  RSS {self.rss_kib / 1024:8.1f} MiB"


def sample(pid: int) -> Sample:
    threads = rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return Sample(threads, len(os.listdir(f"/proc/{pid}/fd")), rss)


# -- the clients


def encode(kind: str, sender: int, seq: int, payload: str) -> str:
    """``kind|sender|seq|crc|payload``; the CRC-32 covers kind, sender, seq and payload."""
    crc = zlib.crc32(f"{kind}|{sender}|{seq}|{payload}".encode())
    return f"{kind}|{sender}|{seq}|{crc:08x}|{payload}"


@dataclass
class Totals:
    sent_echo: int = 0
    sent_broadcast: int = 0
    received: int = 0
    corrupt: int = 0
    out_of_order: int = 0
    foreign_echo: int = 0
    unexpected_closes: int = 0
    errors: list[str] = field(default_factory=list)


class SoakClient:
    def __init__(self, number: int, ws: Any, totals: Totals, clients: int) -> None:
        self.number = number
        self.ws = ws
        self.totals = totals
        self.echo_seq = 0
        self.broadcast_seq = 0
        self.next_echo = 0
        # Per sender: the next broadcast sequence number expected from it.
        self.next_broadcast = [0] * clients

    async def send(self, kind: str, payload: str) -> None:
        if kind == "e":
            seq, self.echo_seq = self.echo_seq, self.echo_seq + 1
            self.totals.sent_echo += 1
        else:
            seq, self.broadcast_seq = self.broadcast_seq, self.broadcast_seq + 1
            self.totals.sent_broadcast += 1
        await self.ws.send(encode(kind, self.number, seq, payload))

    async def read(self) -> None:
        import websockets

        totals = self.totals
        try:
            async for message in self.ws:
                try:
                    kind, sender_text, seq_text, crc, payload = message.split("|", 4)
                    sender, seq = int(sender_text), int(seq_text)
                    intact = zlib.crc32(f"{kind}|{sender}|{seq}|{payload}".encode()) == int(crc, 16)
                except ValueError:
                    intact = False
                if not intact:
                    totals.corrupt += 1
                    continue
                totals.received += 1
                if kind == "e":
                    if sender != self.number:
                        totals.foreign_echo += 1
                    elif seq != self.next_echo:
                        totals.out_of_order += 1
                    self.next_echo = seq + 1
                else:
                    if seq != self.next_broadcast[sender]:
                        totals.out_of_order += 1
                    self.next_broadcast[sender] = seq + 1
        except websockets.ConnectionClosed as closed:
            if closed.rcvd is None or closed.rcvd.code != 1000:
                totals.unexpected_closes += 1
                totals.errors.append(f"client {self.number}: {closed!r}")


def payload_for(rng: random.Random, large_every: int) -> str:
    # Mostly small messages; now and then one larger than a frame (fragmented by the server).
    size = 70_000 if large_every and rng.randrange(large_every) == 0 else rng.randint(16, 512)
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=size))


async def run_clients(args: argparse.Namespace, port: int, pid: int, totals: Totals) -> tuple[dict[str, Sample], float]:
    """One round: connect every client, send for ``--minutes``, drain, disconnect."""
    from websockets.asyncio.client import connect

    samples: dict[str, Sample] = {"start": sample(pid)}
    url = f"ws://127.0.0.1:{port}/"
    compression = "deflate" if args.compression else None
    clients: list[SoakClient] = []
    started = time.monotonic()
    for first in range(0, args.clients, 50):
        batch = range(first, min(first + 50, args.clients))
        sockets = await asyncio.gather(
            *(connect(url, max_size=None, ping_interval=None, open_timeout=60, compression=compression) for _ in batch)
        )
        clients += [SoakClient(number, ws, totals, args.clients) for number, ws in zip(batch, sockets, strict=True)]
    connect_time = time.monotonic() - started
    readers = [asyncio.create_task(client.read()) for client in clients]
    samples["connected"] = sample(pid)
    peak = samples["connected"]

    deadline = time.monotonic() + args.minutes * 60
    rng = random.Random(args.seed)

    async def echo_sender(client: SoakClient) -> None:
        local = random.Random(rng.random())
        await asyncio.sleep(local.random() / args.rate)  # spread the clients over the period
        while time.monotonic() < deadline:
            await client.send("e", payload_for(local, args.large_every))
            await asyncio.sleep(local.expovariate(args.rate))

    async def broadcaster() -> None:
        local = random.Random(rng.random())
        while time.monotonic() < deadline:
            await local.choice(clients).send("b", payload_for(local, 0)[:128])
            await asyncio.sleep(local.expovariate(args.broadcast_rate))

    async def sampler() -> None:
        nonlocal peak
        last_report = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            now = sample(pid)
            peak = Sample(max(peak.threads, now.threads), max(peak.fds, now.fds), max(peak.rss_kib, now.rss_kib))
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                left = max(0.0, deadline - time.monotonic())
                print(
                    f"  {left:5.0f}s left: sent {totals.sent_echo + totals.sent_broadcast}, "
                    f"received {totals.received}; server {now}",
                    flush=True,
                )

    await asyncio.gather(*(echo_sender(client) for client in clients), broadcaster(), sampler())
    samples["peak"] = peak

    # Drain: wait (bounded) until everything sent has arrived.
    expected = totals.sent_echo + totals.sent_broadcast * args.clients
    drain_deadline = time.monotonic() + args.drain
    while totals.received < expected and time.monotonic() < drain_deadline:
        if all(reader.done() for reader in readers):
            break
        await asyncio.sleep(0.1)
    samples["before-close"] = sample(pid)

    await asyncio.gather(*(client.ws.close() for client in clients), return_exceptions=True)
    await asyncio.wait(readers, timeout=60)
    return samples, connect_time


def wait_for_baseline(pid: int, start: Sample, timeout: float) -> Sample:
    """The server's figures once threads and fds are back to the start (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        now = sample(pid)
        if (now.threads <= start.threads + FLUSHER_THREAD and now.fds <= start.fds) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)  # polling another process's /proc: there is no event to wait on


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], int]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        "--port",
        str(args.port),
        "--max-connections",
        str(args.clients + 100),
    ]
    if args.compression:
        command.append("--compression")
    if args.server_stats:
        command += ["--server-stats", str(args.server_stats)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    if not ready or not ready[0].startswith("ready "):
        process.kill()
        raise SystemExit(f"the server did not start: {ready!r}, exit code {process.poll()}")
    return process, int(ready[0].split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=1.0, help="length of each round")
    parser.add_argument(
        "--rounds", type=int, default=1, help="connect, soak and disconnect this many times against one server"
    )
    parser.add_argument("--port", type=int, default=0, help="the server's port (0: any free port)")
    parser.add_argument("--rate", type=float, default=1.0, help="echo messages per client per second")
    parser.add_argument("--broadcast-rate", type=float, default=2.0, help="broadcasts per second, all clients together")
    parser.add_argument("--large-every", type=int, default=50, help="one echo in N is 70 kB (0: never)")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for messages in flight")
    parser.add_argument("--compression", action="store_true", help="permessage-deflate on both sides")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--server-stats", type=float, metavar="SECONDS", help="print the server's gc objects and malloc heap this often"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--max-connections", type=int, default=1100, help=argparse.SUPPRESS)
    args = parser.parse_args()

    raise_fd_limit(args.max_connections + 200 if args.serve else args.clients + 200)
    if args.serve:
        serve(args.port, args.max_connections, args.compression, args.server_stats)
        return 0

    # The listen backlog (128) is enough: clients connect 50 at a time.
    socket.setdefaulttimeout(60)
    process, port = start_server(args)
    try:
        print(
            f"soak: {args.clients} clients for {args.minutes:g} min on port {port}, server pid {process.pid}; "
            f"{args.rate:g} echo/s per client, {args.broadcast_rate:g} broadcasts/s"
            f"{', compression' if args.compression else ''}",
            flush=True,
        )
        totals = Totals()
        rounds: list[tuple[dict[str, Sample], float]] = []
        for _ in range(args.rounds):
            samples, connect_time = asyncio.run(run_clients(args, port, process.pid, totals))
            baseline = rounds[0][0]["start"] if rounds else samples["start"]
            samples["after-close"] = wait_for_baseline(process.pid, baseline, 60)
            rounds.append((samples, connect_time))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            exit_code = process.wait(10)

    expected = totals.sent_echo + totals.sent_broadcast * args.clients
    lost = expected - totals.received
    start, end = rounds[0][0]["start"], rounds[-1][0]["after-close"]
    back = end.threads <= start.threads + FLUSHER_THREAD and end.fds <= start.fds
    ok = lost == 0 and totals.corrupt == 0 and totals.out_of_order == 0 and totals.unexpected_closes == 0 and back
    sent = totals.sent_echo + totals.sent_broadcast
    print(f"sent       {sent} ({totals.sent_echo} echo, {totals.sent_broadcast} broadcast)")
    print(f"expected   {expected} deliveries")
    print(f"received   {totals.received}")
    print(f"lost       {lost}")
    print(f"corrupt    {totals.corrupt}   out of order {totals.out_of_order}   foreign echoes {totals.foreign_echo}")
    print(f"unexpected closes {totals.unexpected_closes} {totals.errors[:3]}")
    for number, (samples, connect_time) in enumerate(rounds, 1):
        print(f"round {number}: {args.clients} clients connected in {connect_time:.1f}s")
        for name, figures in samples.items():
            print(f"  server {name:13s} {figures}")
    print(f"back to the start figures (+ the flusher thread): {'yes' if back else 'NO'}")
    print(f"server exit code {exit_code}")
    print("OK" if ok else "FAILED")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "clients": args.clients,
                    "minutes": args.minutes,
                    "sent_echo": totals.sent_echo,
                    "sent_broadcast": totals.sent_broadcast,
                    "expected": expected,
                    "received": totals.received,
                    "lost": lost,
                    "corrupt": totals.corrupt,
                    "out_of_order": totals.out_of_order,
                    "unexpected_closes": totals.unexpected_closes,
                    "rounds": args.rounds,
                    "server": [{name: vars(figures) for name, figures in samples.items()} for samples, _ in rounds],
                    "ok": ok,
                },
                indent=2,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
