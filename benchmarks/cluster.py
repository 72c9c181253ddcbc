#!/usr/bin/env python3
"""Cluster broadcast: deliveries/s through a Redis backplane against one process.

Two cases, in alternating order, each repeated ``--rounds`` times:

* **local**: one syncaerys process with all the clients (``--clients``, 1,000 by
  default); one client asks for ``--count`` broadcasts of ``--size`` bytes;
* **cluster**: two syncaerys processes sharing a Redis backplane, half the
  clients on each; the trigger goes to the first process, which serves its own
  clients and publishes each broadcast once; the second applies it to its own.

The Node ``ws`` load generator (``npm ci --prefix benchmarks/loadgen``) counts
deliveries on every client; the table gives the median deliveries/s, the time
until all arrived, and the CPU seconds of each server process and of Redis.
A private redis-server is started on a free port unless ``--redis`` is given.

    python benchmarks/cluster.py
    python benchmarks/cluster.py --clients 1000 --count 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import run as bench  # benchmarks/run.py: process helpers shared with the main runner

HERE = Path(__file__).resolve().parent
SERVER = HERE / "servers" / "syncaerys_server.py"


def start_redis(workdir: Path) -> tuple[subprocess.Popen[Any], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found: apt-get install redis-server, or pass --redis URL")
    port = bench.free_port()
    proc = bench.spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        None,
        cwd=str(workdir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.RedisError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def start_server(python: str, redis_url: str | None, log: Any) -> tuple[subprocess.Popen[Any], int]:
    port = bench.free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("BENCH_REDIS", None)
    if redis_url:
        env["BENCH_REDIS"] = redis_url
    proc = bench.spawn(
        [python, str(SERVER), str(port)],
        None,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(SERVER.parent),
    )
    deadline = time.monotonic() + 30
    while not bench.ws_handshake_ok(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server on {port} did not start")
        time.sleep(0.05)
    return proc, port


def run_case(args: argparse.Namespace, case: str, redis_proc: subprocess.Popen[Any] | None, redis_url: str) -> dict:
    nodes = 2 if case == "cluster" else 1
    with tempfile.TemporaryFile() as log:
        servers = [start_server(args.python, redis_url if case == "cluster" else None, log) for _ in range(nodes)]
        try:
            urls = ",".join(f"ws://127.0.0.1:{port}/" for _, port in servers)
            cpu0 = [bench.proc_cpu(p.pid) for p, _ in servers]
            redis_cpu0 = bench.proc_cpu(redis_proc.pid) if redis_proc else 0.0
            cmd = [
                args.node,
                str(bench.LOADGEN),
                "broadcast",
                "--url",
                urls,
                "--clients",
                str(args.clients),
                "--count",
                str(args.count),
                "--bsize",
                str(args.size),
                "--reps",
                "1",
                "--timeout",
                "180",
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
            result = next((json.loads(line) for line in out.stdout.splitlines() if '"result"' in line), None)
            if result is None:
                raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
            rep = result["reps"][0]
            return {
                "rate": rep["rate"],
                "elapsed": rep["elapsed"],
                "complete": rep["complete"],
                "received": rep["received"],
                "expected": result["expected"],
                "server_cpu": [bench.proc_cpu(p.pid) - c for (p, _), c in zip(servers, cpu0, strict=True)],
                "redis_cpu": (bench.proc_cpu(redis_proc.pid) - redis_cpu0) if redis_proc else 0.0,
                "gen_cpu": rep["gen_cpu"],
            }
        finally:
            for proc, _ in servers:
                bench.stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default=None, help="use this Redis instead of a private one")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--node", default=shutil.which("node") or "node")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args()
    bench.raise_fd_limit(args.clients * 3 + 100)

    redis_proc = None
    with tempfile.TemporaryDirectory() as workdir:
        try:
            if args.redis:
                redis_url = args.redis
            else:
                redis_proc, redis_url = start_redis(Path(workdir))
            runs: dict[str, list[dict]] = {"local": [], "cluster": []}
            for i in range(args.rounds):
                order = ["local", "cluster"] if i % 2 == 0 else ["cluster", "local"]
                for case in order:
                    figures = run_case(args, case, redis_proc, redis_url)
                    runs[case].append(figures)
                    print(
                        f"round {i + 1} {case:7}: {figures['rate']:>9,.0f} deliveries/s, "
                        f"{figures['received']}/{figures['expected']} in {figures['elapsed']:.3f} s",
                        flush=True,
                    )
        finally:
            if redis_proc is not None:
                bench.stop(redis_proc)
            bench.kill_all_children()

    print()
    print(f"broadcast of {args.count} x {args.size} B to {args.clients} clients; medians of {args.rounds} rounds")
    header = ("case", "deliveries/s", "spread", "all arrived", "server CPU s", "Redis CPU s")
    print("{:28} {:>13} {:>17} {:>12} {:>14} {:>12}".format(*header))
    medians = {}
    for case, label in (("local", "1 process (in-process)"), ("cluster", "2 processes + Redis")):
        rates = [r["rate"] for r in runs[case]]
        medians[case] = statistics.median(rates)
        elapsed = statistics.median(r["elapsed"] for r in runs[case])
        cpu = statistics.median(sum(r["server_cpu"]) for r in runs[case])
        redis_cpu = statistics.median(r["redis_cpu"] for r in runs[case])
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        print(f"{label:28} {medians[case]:>13,.0f} {spread:>17} {elapsed:>11.3f}s {cpu:>14.2f} {redis_cpu:>12.3f}")
    print(f"cluster / in-process: {medians['cluster'] / medians['local']:.2f}x")
    incomplete = [r for case in runs.values() for r in case if not r["complete"]]
    if incomplete:
        print(f"WARNING: {len(incomplete)} run(s) did not deliver everything")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))
    return 1 if incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
