#!/usr/bin/env python3
"""Where writing a frame's header and payload with one ``sendmsg`` beats joining them first.

For each payload size, times the two ways a server frame can reach a TCP
socket on loopback: ``send(header + payload)`` (a new ``bytes`` of the whole
frame, then one copy into the kernel) and ``sendmsg([header, payload])`` (no
copy in Python, but ``sendmsg`` builds an iovec and takes a buffer of each
part). A reader process pinned to another CPU drains the socket, so the
writes never wait long for room. The figure is the time per frame of the
writer's loop, header built included; ``syncaerys.protocol.frames``'s
``SENDMSG_FROM`` is chosen from this table.

    python benchmarks/sendmsg_bench.py              # sizes from 32 B to 1 MiB
    python benchmarks/sendmsg_bench.py --cpus 0,1   # writer on CPU 0, reader on CPU 1

Run it alone on the machine (it is a timing).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import time

SIZES = [32, 256, 1024, 2048, 4096, 8192, 16384, 65536, 262144, 1 << 20]
_pack_long = struct.Struct("!BBQ").pack
_pack_short = struct.Struct("!BBH").pack


def header(length: int) -> bytes:
    if length < 126:
        return bytes((0x82, length))
    if length < 65536:
        return _pack_short(0x82, 126, length)
    return _pack_long(0x82, 127, length)


def drain(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        buffer = bytearray(1 << 20)
        while sock.recv_into(buffer):
            pass


def send_all(sock: socket.socket, data: bytes) -> None:
    sock.sendall(data)


def sendmsg_all(sock: socket.socket, head: bytes, payload: bytes) -> None:
    sent = sock.sendmsg([head, payload])
    if sent < len(head) + len(payload):  # a partial write: the rest as sendall would
        sock.sendall(memoryview(head + payload)[sent:])


def measure(sock: socket.socket, size: int, seconds: float) -> tuple[float, float]:
    payload = b"x" * size
    count = max(50, min(200_000, int(2e9 // (size + 2000) * seconds / 20)))
    joined: list[float] = []
    vectored: list[float] = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            send_all(sock, header(size) + payload)
        joined.append((time.perf_counter() - start) / count)
        start = time.perf_counter()
        for _ in range(count):
            sendmsg_all(sock, header(size), payload)
        vectored.append((time.perf_counter() - start) / count)
    return statistics.median(joined), statistics.median(vectored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", default="0,1", help="writer CPU, reader CPU (default 0,1)")
    parser.add_argument("--seconds", type=float, default=0.5, help="rough time per size and way (default 0.5)")
    args = parser.parse_args()
    writer_cpu, reader_cpu = (int(c) for c in args.cpus.split(","))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    reader = subprocess.Popen(
        [sys.executable, __file__, "--drain", str(port)],
        preexec_fn=lambda: os.sched_setaffinity(0, {reader_cpu}),
    )
    try:
        sock, _ = listener.accept()
        os.sched_setaffinity(0, {writer_cpu})
        print(f"Python {sys.version.split()[0]}; writer on CPU {writer_cpu}, reader on CPU {reader_cpu}")
        print(f"{'payload':>9} | {'send(h + p) µs':>14} | {'sendmsg([h, p]) µs':>18} | sendmsg / join")
        for size in SIZES:
            join, vector = measure(sock, size, args.seconds)
            print(f"{size:>9} | {join * 1e6:>14.2f} | {vector * 1e6:>18.2f} | {vector / join:.2f}")
        sock.close()
    finally:
        reader.wait(10)
        listener.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--drain":
        drain(int(sys.argv[2]))
    else:
        main()
