#!/usr/bin/env python3
"""What the blocking-in-C scenarios' call costs by itself, outside any server.

    python benchmarks/blockc_cost.py

The call is ``servers/_common.py``'s ``sqlite_wait(0.005)``: a ``SELECT`` on a
real sqlite3 database file whose exclusive lock another connection holds, so
sqlite's busy handler sleeps in C (the GIL released) for the 5 ms busy timeout,
then gives up. Printed: its wall time alone (one thread), the rate of 100 threads
calling it at once (near 100 / 5 ms if the GIL is released for the wait), and the
process CPU per call. For comparison, a recursive CTE of the same wall time
(CPU work in C, also with the GIL released) on one and on two threads: its rate
is bounded by the cores, not by the threads.
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))

import _common

DELAY = 0.005
CTE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*) FROM c"


def timed(call: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


def parallel(call: object, threads: int, per_thread: int) -> tuple[float, float]:
    """(calls/s, CPU s per call) with ``threads`` threads calling ``call`` ``per_thread`` times each."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            call()  # type: ignore[operator]

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    cpu0 = time.process_time()
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    return threads * per_thread / elapsed, (time.process_time() - cpu0) / (threads * per_thread)


def describe(name: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p99 = samples[int(0.99 * (len(samples) - 1))]
    print(
        f"{name}: mean {1e3 * statistics.mean(samples):.2f} ms, p50 {1e3 * statistics.median(samples):.2f} ms, "
        f"p99 {1e3 * p99:.2f} ms ({len(samples)} calls, one thread)"
    )


def main() -> None:
    _common.sqlite_wait(DELAY)  # makes the database and its lock
    cpu0 = time.process_time()
    describe("sqlite3 lock wait (busy timeout 5 ms)", timed(lambda: _common.sqlite_wait(DELAY), 400))
    print(f"  process CPU per call, one thread: {1e6 * (time.process_time() - cpu0) / 400:.0f} µs")
    rate, cpu = parallel(lambda: _common.sqlite_wait(DELAY), 100, 20)
    print(f"  100 threads at once: {rate:.0f} calls/s (ideal 100 / 5 ms = 20000), {1e6 * cpu:.0f} µs CPU per call")

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    rows = 1000
    while True:  # the row count whose CTE takes about DELAY
        t0 = time.perf_counter()
        conn.execute(CTE, (rows,)).fetchone()
        if time.perf_counter() - t0 >= DELAY:
            break
        rows *= 2
    rows = int(rows * DELAY / statistics.median(timed(lambda: conn.execute(CTE, (rows,)).fetchone(), 20)))
    local = threading.local()

    def cte() -> None:
        if not hasattr(local, "conn"):
            local.conn = sqlite3.connect(":memory:")
        local.conn.execute(CTE, (rows,)).fetchone()

    describe(f"recursive CTE of {rows} rows (CPU in C)", timed(cte, 100))
    for threads in (1, 2, 100):
        rate, cpu = parallel(cte, threads, max(1, 200 // threads))
        print(f"  {threads} thread(s): {rate:.0f} calls/s, {1e3 * cpu:.2f} ms CPU per call")


if __name__ == "__main__":
    main()
