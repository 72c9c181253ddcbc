#!/usr/bin/env python3
"""Side-by-side benchmark: syncaerys against websockets (sync and asyncio), flask-sock and picows.

Each server under test runs as its own process (``benchmarks/servers/``); a
separate Node.js process (``benchmarks/loadgen/``, the ``ws`` package) drives
it on 127.0.0.1. For every (round, scenario, server) a fresh server is
started, the scenario runs, the server is stopped. The order of the servers
rotates from round to round. At the end ONE table is printed: per metric the
median over the rounds, the spread (min-max), and the ratio of syncaerys to
each peer: the median (min-max) of the ratios within each round, where the two
ran one after the other, so that a machine that runs faster or slower from one
round to the next moves both sides of each ratio alike.

Groups of scenarios, each with its own default servers and its own table:
``raw`` (the default: echo, large messages, broadcast, burst, scale),
``blocking`` (every message costs the handler a 5 ms or 1 ms sleep plus a JSON
round trip, at 100 and 1,000 clients), ``django``, and ``scale`` (10,000
clients in one process: the time to connect them, a 64-byte broadcast to all,
RSS per idle client, threads and fds before, with them, and after they left).

    python benchmarks/run.py                  # the raw table, 3 rounds (about 20 min on 2 cores)
    python benchmarks/run.py --group blocking # the blocking table, 3 rounds (about 15 min)
    python benchmarks/run.py --group scale    # 10,000 clients, 3 rounds (about 5 min)
    python benchmarks/run.py --quick          # smoke run: fewer clients/messages, 1 round
    python benchmarks/run.py --scenarios echo100,burst --servers syncaerys,ws-sync --rounds 5

Server CPU is read from /proc/PID/stat, and its context switches from
/proc/PID/task/*/status, at the start and end of each measured window (the
load generator stops at each mark until the runner has sampled);
the generator reports its own CPU time (process.cpuUsage) for the same window,
so the table shows whether the generator, not the server, was the limit
(near 100 % of one core means it was). Every wait is bounded; the servers and
the generator are killed on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
LOADGEN = HERE / "loadgen" / "loadgen.js"
RESULTS = HERE / "results"

FLASK_SOCK = ("flask", "flask_sock", "simple_websocket")
# name -> (script, modules it needs)
SERVERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "syncaerys": ("syncaerys_server.py", ("syncaerys",)),
    # The same server with the compiled modules (an install made with SYNCAERYS_COMPILE=1)
    # imported from their sources; on request only.
    "syncaerys-source": ("syncaerys_server.py", ("syncaerys",)),
    "ws-sync": ("websockets_sync_server.py", ("websockets",)),
    "ws-asyncio": ("websockets_asyncio_server.py", ("websockets",)),
    "ws-asyncio-1000": ("websockets_asyncio_pool_server.py", ("websockets",)),
    "flask-sock": ("flask_sock_server.py", FLASK_SOCK),
    "flask-sock-gevent": ("flask_sock_gevent_server.py", (*FLASK_SOCK, "gevent")),
    "picows": ("picows_server.py", ("picows",)),
    # syncaerys's own gateway hosted by gevent (examples/gevent_app.py); on request only.
    "syncaerys-gevent": ("syncaerys_gevent_server.py", ("syncaerys", "gevent")),
    # Not a peer: the least a thread per client can do (see its docstring); on request only.
    "threads-floor": ("threads_floor_server.py", ("socket",)),
    # The Django scenarios' servers (benchmarks/djbench, PostgreSQL started by the runner).
    "syncaerys-django": ("syncaerys_django_server.py", ("syncaerys.django", "django", "psycopg_pool")),
    "channels-daphne": ("channels_daphne_server.py", ("channels", "daphne", "django", "psycopg_pool")),
    "channels-uvicorn": ("channels_uvicorn_server.py", ("channels", "uvicorn", "django", "psycopg_pool")),
}
#: Environment variables a server runs with, beyond the runner's own.
SERVER_ENV: dict[str, dict[str, str]] = {"syncaerys-source": {"SYNCAERYS_NO_COMPILED": "1"}}

BASELINE = "syncaerys"
# The server the ratios of each group's table are taken against.
BASELINES = {"raw": BASELINE, "blocking": BASELINE, "django": "syncaerys-django", "scale": BASELINE}
# The servers each group of scenarios runs by default (--servers overrides).
# ws-asyncio-1000 differs from ws-asyncio only in its executor, which only
# the blocking scenarios use.
GROUP_SERVERS: dict[str, list[str]] = {
    "raw": ["syncaerys", "ws-sync", "ws-asyncio", "flask-sock", "picows"],
    "blocking": [
        "syncaerys",
        "flask-sock-gevent",
        "ws-asyncio",
        "ws-asyncio-1000",
        "picows",
        "ws-sync",
        "flask-sock",
    ],
    "django": ["syncaerys-django", "channels-daphne", "channels-uvicorn"],
    # websockets' sync server needs two threads and up to four fds per client: 40,000 fds
    # at 10,000 clients, past this machine's hard limit of 20,000.
    "scale": ["syncaerys", "picows"],
}
# The servers of the blocking-in-C scenarios (blockc*), when --servers is not given.
BLOCKC_SERVERS = ["syncaerys", "flask-sock-gevent", "syncaerys-gevent", "ws-asyncio", "picows"]
# What the handler blocks in, by the request's key (loadgen.js --op): the label of its rows.
BLOCK_OPS = {"block": "block", "blockc": "sqlite wait", "db": "Django pg_sleep"}
# Django's connection pool per server process (djbench/settings.py) and PostgreSQL's cap above it.
DB_POOL = 100
PG_MAX_CONNECTIONS = 300
PG_DATABASE = "bench"


@dataclass
class Scenario:
    name: str
    kind: str  # the loadgen scenario
    full: list[str]
    quick: list[str]
    timeout: float  # seconds for the whole loadgen run
    title: str
    group: str = "raw"  # the table it goes to (GROUP_SERVERS)
    servers: list[str] | None = None  # its default servers, if not its group's
    op: str = ""  # block scenarios: what the handler blocks in (BLOCK_OPS)


def block_scenario(
    ms: int, clients: int, op: str = "block", group: str = "blocking", servers: list[str] | None = None
) -> Scenario:
    common = ["--clients", str(clients), "--block", str(ms / 1000), "--messages", "1000000", "--op", op]
    prefix = {"block": "block", "blockc": "blockc", "db": "django"}[op]
    return Scenario(
        f"{prefix}{ms}-{clients}",
        "block",
        [*common, "--duration", "5", "--warmup", "1"],
        [*common, "--duration", "2", "--warmup", "0.5"],
        180,
        f"blocking handler ({BLOCK_OPS[op]}) {ms} ms, {clients} clients",
        group,
        servers,
        op,
    )


# The many-clients scenario: a 64-byte broadcast, 3 times; 100 handshakes in flight while connecting;
# up to 120 s for the server's threads and fds to come back once the clients left.
MANY = ["--bsize", "64", "--reps", "3", "--connect-concurrency", "100", "--settle", "120", "--wait-timeout", "30"]

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "echo1",
            "echo",
            ["--clients", "1", "--size", "32", "--messages", "1000000", "--duration", "5", "--warmup", "1"],
            ["--clients", "1", "--size", "32", "--messages", "100000", "--duration", "1.5", "--warmup", "0.5"],
            120,
            "echo 32 B, 1 client",
        ),
        Scenario(
            "echo10",
            "echo",
            ["--clients", "10", "--size", "32", "--messages", "1000000", "--duration", "5", "--warmup", "1"],
            ["--clients", "10", "--size", "32", "--messages", "100000", "--duration", "1.5", "--warmup", "0.5"],
            120,
            "echo 32 B, 10 clients",
        ),
        Scenario(
            "echo100",
            "echo",
            ["--clients", "100", "--size", "32", "--messages", "1000000", "--duration", "5", "--warmup", "1"],
            ["--clients", "100", "--size", "32", "--messages", "100000", "--duration", "1.5", "--warmup", "0.5"],
            150,
            "echo 32 B, 100 clients",
        ),
        Scenario(
            "large",
            "large",
            ["--messages", "20000", "--duration", "10", "--warmup", "1", "--split", "5"],
            ["--messages", "2000", "--duration", "3", "--warmup", "0.5", "--split", "1.5"],
            120,
            "echo 1 MiB binary, 1 client",
        ),
        Scenario(
            "broadcast",
            "broadcast",
            ["--clients", "1000", "--count", "100", "--bsize", "64", "--reps", "3", "--wait-timeout", "60"],
            ["--clients", "200", "--count", "50", "--bsize", "64", "--reps", "2", "--wait-timeout", "30"],
            300,
            "broadcast",
        ),
        Scenario(
            "burst",
            "burst",
            ["--clients", "5000", "--size", "32", "--reps", "3", "--wait-timeout", "60"],
            ["--clients", "1000", "--size", "32", "--reps", "2", "--wait-timeout", "30"],
            420,
            "burst",
        ),
        Scenario(
            "scale",
            "scale",
            ["--steps", "100,1000,5000"],
            ["--steps", "100,1000"],
            300,
            "scale",
        ),
        Scenario(
            "scale10k",
            "many",
            [*MANY, "--clients", "10000"],
            [*MANY, "--clients", "1000"],
            600,
            "10,000 clients in one process",
            "scale",
        ),
        block_scenario(5, 100),
        block_scenario(5, 1000),
        block_scenario(5, 2000),
        block_scenario(1, 100),
        block_scenario(1, 1000),
        block_scenario(5, 100, "blockc", servers=BLOCKC_SERVERS),
        block_scenario(5, 1000, "blockc", servers=BLOCKC_SERVERS),
        block_scenario(5, 100, "db", "django"),
        block_scenario(5, 1000, "db", "django"),
    ]
}
GROUPS = list(GROUP_SERVERS)


# --- metrics: how each scenario's raw result becomes table rows ------------


@dataclass
class Metric:
    key: str
    label: str
    higher_is_better: bool | None  # None: informational (no better/worse)
    unit: str = ""


def metric_list(scenario: Scenario, quick: bool) -> list[Metric]:
    args = scenario.quick if quick else scenario.full
    opt = {args[i][2:]: args[i + 1] for i in range(0, len(args) - 1, 2)}
    n = scenario.name
    if scenario.kind == "echo":
        head = f"echo 32 B x{opt['clients']}"
        return [
            Metric(f"{n}.rate", f"{head}: round trips/s", True),
            Metric(f"{n}.p50", f"{head}: p50 latency ms", False),
            Metric(f"{n}.p99", f"{head}: p99 latency ms", False),
            Metric(f"{n}.srv_us", f"{head}: server CPU µs/round trip", False),
            Metric(f"{n}.ctx", f"{head}: ctx switches/round trip", False),
            Metric(f"{n}.gen_cpu", f"{head}: generator CPU %", None),
            Metric(f"{n}.other", f"{head}: other processes CPU %", None),
        ]
    if scenario.kind == "block":
        clients, delay = int(opt["clients"]), float(opt["block"])
        head = f"{BLOCK_OPS[opt['op']]} {delay * 1e3:g} ms x{clients}"
        db = [
            Metric(f"{n}.pg_us", f"{head}: PostgreSQL CPU µs/msg", False),
            Metric(f"{n}.db_peak", f"{head}: DB connections, peak (1/s)", None),
            Metric(f"{n}.db_end", f"{head}: DB connections at the window's end", None),
        ]
        return [
            Metric(f"{n}.rate", f"{head}: msg/s (ideal {fmt(clients / delay)})", True),
            Metric(f"{n}.ideal_pct", f"{head}: % of ideal", True),
            Metric(f"{n}.p50", f"{head}: p50 latency ms", False),
            Metric(f"{n}.p99", f"{head}: p99 latency ms", False),
            Metric(f"{n}.srv_us", f"{head}: server CPU µs/msg", False),
            Metric(f"{n}.ctx", f"{head}: ctx switches/msg", False),
            Metric(f"{n}.threads", f"{head}: server threads", None),
            *(db if opt["op"] == "db" else []),
            Metric(f"{n}.gen_cpu", f"{head}: generator CPU %", None),
            Metric(f"{n}.other", f"{head}: other processes CPU %", None),
        ]
    if scenario.kind == "large":
        split = fmt(float(opt["split"]))
        return [
            Metric(f"{n}.mbps", "echo 1 MiB: MB/s (10^6 B echoed)", True),
            Metric(f"{n}.warmup_mbps", f"echo 1 MiB: MB/s in the warm-up ({opt['warmup']} s, fresh server)", True),
            Metric(f"{n}.first_mbps", f"echo 1 MiB: MB/s in the window's first {split} s", True),
            Metric(f"{n}.rest_mbps", "echo 1 MiB: MB/s in the rest of the window", True),
            Metric(f"{n}.srv_ms", "echo 1 MiB: server CPU ms/MiB", False),
            Metric(f"{n}.ctx", "echo 1 MiB: ctx switches/MiB", False),
            Metric(f"{n}.gen_cpu", "echo 1 MiB: generator CPU %", None),
            Metric(f"{n}.other", "echo 1 MiB: other processes CPU %", None),
        ]
    if scenario.kind == "broadcast":
        head = f"broadcast {opt['count']}x{opt['bsize']} B to {opt['clients']}"
        return [
            Metric(f"{n}.rate", f"{head}: deliveries/s", True),
            Metric(f"{n}.time", f"{head}: s until all arrived", False),
            Metric(f"{n}.srv_us", f"{head}: server CPU µs/delivery", False),
            Metric(f"{n}.ctx", f"{head}: ctx switches/delivery", False),
            Metric(f"{n}.gen_cpu", f"{head}: generator CPU %", None),
            Metric(f"{n}.other", f"{head}: other processes CPU %", None),
        ]
    if scenario.kind == "burst":
        head = f"burst of {opt['clients']}"
        return [
            Metric(f"{n}.time", f"{head}: s until all echoes (median of reps)", False),
            Metric(f"{n}.first", f"{head}: first rep s", False),
            Metric(f"{n}.srv_cpu", f"{head}: server CPU s", False),
            Metric(f"{n}.ctx", f"{head}: ctx switches/echo", False),
            Metric(f"{n}.gen_cpu", f"{head}: generator CPU %", None),
            Metric(f"{n}.other", f"{head}: other processes CPU %", None),
        ]
    if scenario.kind == "scale":
        steps = [int(x) for x in opt["steps"].split(",")]
        top = steps[-1]
        return [
            Metric(f"{n}.kib_per_conn", f"scale: RSS KiB per idle conn ({steps[0]}->{top})", False),
            Metric(f"{n}.rss_mib", f"scale: RSS MiB at {top} conns", False),
            Metric(f"{n}.threads", f"scale: threads at {top} conns", False),
            Metric(f"{n}.threads_per_conn", f"scale: threads per conn ({steps[0]}->{top})", False),
            Metric(f"{n}.fds", f"scale: fds at {top} conns", False),
        ]
    if scenario.kind == "many":
        head = f"{int(opt['clients']):,} clients"
        return [
            Metric(f"{n}.connect", f"{head}: s to connect them all", False),
            Metric(f"{n}.bcast", f"{head}: s from a {opt['bsize']} B broadcast to the last receipt (median)", False),
            Metric(f"{n}.bcast_max", f"{head}: that broadcast, slowest of 3, s", False),
            Metric(f"{n}.kib_per_conn", f"{head}: RSS KiB per idle client (RSS with them - before, / clients)", False),
            Metric(f"{n}.rss_mib", f"{head}: RSS MiB with them", False),
            Metric(f"{n}.rss0_mib", f"{head}: RSS MiB before", None),
            Metric(f"{n}.rss_left_mib", f"{head}: RSS MiB after they left", None),
            Metric(f"{n}.threads0", f"{head}: threads before", None),
            Metric(f"{n}.threads", f"{head}: threads with them", None),
            Metric(f"{n}.threads_left", f"{head}: threads after they left", None),
            Metric(f"{n}.fds0", f"{head}: fds before", None),
            Metric(f"{n}.fds", f"{head}: fds with them", None),
            Metric(f"{n}.fds_left", f"{head}: fds after they left", None),
            Metric(f"{n}.settle", f"{head}: s until threads and fds were back (max {opt['settle']})", False),
            Metric(f"{n}.srv_cpu", f"{head}: server CPU s, connect to leave", False),
        ]
    raise ValueError(scenario.kind)


def extract(scenario: Scenario, result: dict[str, Any], marks: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Turn the generator's result and the runner's samples into metric values."""
    n = scenario.name
    out: dict[str, float] = {}

    def srv_cpu(start: str, end: str) -> float:
        return float(marks[end]["cpu"] - marks[start]["cpu"])

    def ctx(start: str, end: str) -> float:
        """Context switches of the server's threads (voluntary + involuntary) in a window."""
        return float(marks[end]["ctx"] - marks[start]["ctx"])

    def other_pct(start: str, end: str) -> float | None:
        """CPU % (of one CPU) used by anything but the server and the generator in a window.

        None for windows under 0.5 s: /proc counts in ticks of 10 ms.
        """
        a, b = marks[start], marks[end]
        if b["t"] - a["t"] < 0.5:
            return None
        busy = b["busy"] - a["busy"]
        gen = b.get("gen_cpu", 0.0) - a.get("gen_cpu", 0.0)
        pg = b.get("pg_cpu", 0.0) - a.get("pg_cpu", 0.0)  # the Django scenarios' PostgreSQL, counted apart
        return max(0.0, 100 * (busy - (b["cpu"] - a["cpu"]) - gen - pg) / max(1e-9, b["t"] - a["t"]))

    if scenario.kind in ("echo", "large", "block"):
        elapsed = result["elapsed"]
        count = max(1, result["count"])
        cpu = srv_cpu("start", "end")
        out[f"{n}.gen_cpu"] = 100 * result["gen_cpu"] / elapsed
        out[f"{n}.ctx"] = ctx("start", "end") / count
        other = other_pct("start", "end")
        if other is not None:
            out[f"{n}.other"] = other
        if scenario.kind in ("echo", "block"):
            out[f"{n}.rate"] = result["rate"]
            out[f"{n}.p50"] = result["p50_ms"]
            out[f"{n}.p99"] = result["p99_ms"]
            out[f"{n}.srv_us"] = 1e6 * cpu / count
        if scenario.kind == "block":
            out[f"{n}.ideal_pct"] = 100 * result["rate"] / result["ideal"]
            if "pg_cpu" in marks["start"]:
                out[f"{n}.pg_us"] = 1e6 * (marks["end"]["pg_cpu"] - marks["start"]["pg_cpu"]) / count
            out[f"{n}.threads"] = marks["end"]["tasks"]
        if scenario.kind == "large":
            out[f"{n}.mbps"] = result["mbps"]
            out[f"{n}.warmup_mbps"] = result["warmup_mbps"]
            out[f"{n}.first_mbps"] = result["first_mbps"]
            if result["rest_mbps"] is not None:
                out[f"{n}.rest_mbps"] = result["rest_mbps"]
            out[f"{n}.srv_ms"] = 1e3 * cpu / count
    elif scenario.kind == "broadcast":
        reps = result["reps"]
        if not reps:
            raise RuntimeError("broadcast: no repetition ran")
        # An incomplete repetition (past --wait-timeout) still gives a bound.
        out[f"{n}.incomplete"] = sum(not r["complete"] for r in reps)
        out[f"{n}.rate"] = statistics.median(r["rate"] for r in reps)
        out[f"{n}.time"] = statistics.median(r["elapsed"] for r in reps)
        out[f"{n}.srv_us"] = statistics.median(
            1e6 * srv_cpu(f"start-{i}", f"end-{i}") / r["received"] for i, r in enumerate(reps)
        )
        out[f"{n}.ctx"] = statistics.median(
            ctx(f"start-{i}", f"end-{i}") / max(1, r["received"]) for i, r in enumerate(reps)
        )
        out[f"{n}.gen_cpu"] = statistics.median(100 * r["gen_cpu"] / r["elapsed"] for r in reps)
        others = [o for i in range(len(reps)) if (o := other_pct(f"start-{i}", f"end-{i}")) is not None]
        if others:
            out[f"{n}.other"] = statistics.median(others)
    elif scenario.kind == "burst":
        reps = result["reps"]
        if not reps:
            raise RuntimeError("burst: no repetition ran")
        out[f"{n}.incomplete"] = sum(not r["complete"] for r in reps)
        out[f"{n}.time"] = statistics.median(r["elapsed"] for r in reps)
        out[f"{n}.first"] = reps[0]["elapsed"]
        out[f"{n}.srv_cpu"] = statistics.median(srv_cpu(f"start-{i}", f"end-{i}") for i in range(len(reps)))
        out[f"{n}.ctx"] = statistics.median(
            ctx(f"start-{i}", f"end-{i}") / max(1, r["received"]) for i, r in enumerate(reps)
        )
        out[f"{n}.gen_cpu"] = statistics.median(100 * r["gen_cpu"] / r["elapsed"] for r in reps)
        others = [o for i in range(len(reps)) if (o := other_pct(f"start-{i}", f"end-{i}")) is not None]
        if others:
            out[f"{n}.other"] = statistics.median(others)
    elif scenario.kind == "scale":
        steps = result["steps"]
        if result["alive"] != steps[-1]:
            raise RuntimeError(f"scale: {result['alive']} of {steps[-1]} connections still open at the end")
        low, top = marks[f"conns-{steps[0]}"], marks[f"conns-{steps[-1]}"]
        span = steps[-1] - steps[0]
        out[f"{n}.kib_per_conn"] = (top["rss_kib"] - low["rss_kib"]) / span
        out[f"{n}.rss_mib"] = top["rss_kib"] / 1024
        out[f"{n}.threads"] = top["threads"]
        out[f"{n}.threads_per_conn"] = (top["threads"] - low["threads"]) / span
        out[f"{n}.fds"] = top["fds"]
    elif scenario.kind == "many":
        clients = result["clients"]
        if result["alive"] != clients:
            raise RuntimeError(f"many: {result['alive']} of {clients} connections still open before they left")
        reps = result["reps"]
        if not reps:
            raise RuntimeError("many: no broadcast ran")
        before, top, left = marks["conns-0"], marks[f"conns-{clients}"], marks["left"]
        out[f"{n}.incomplete"] = sum(not r["complete"] for r in reps)
        out[f"{n}.connect"] = result["connect"]
        out[f"{n}.bcast"] = statistics.median(r["elapsed"] for r in reps)
        out[f"{n}.bcast_max"] = max(r["elapsed"] for r in reps)
        out[f"{n}.kib_per_conn"] = (top["rss_kib"] - before["rss_kib"]) / clients
        out[f"{n}.rss_mib"] = top["rss_kib"] / 1024
        out[f"{n}.rss0_mib"] = before["rss_kib"] / 1024
        out[f"{n}.rss_left_mib"] = left["rss_kib"] / 1024
        for key, mark in (("0", before), ("", top), ("_left", left)):
            out[f"{n}.threads{key}"] = mark["threads"]
            out[f"{n}.fds{key}"] = mark["fds"]
        out[f"{n}.settle"] = left["settle_s"]
        out[f"{n}.srv_cpu"] = srv_cpu("conns-0", "left")
    return out


# --- processes -----------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")
_children: set[subprocess.Popen[Any]] = set()


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    return {"rss_kib": out["VmRSS"], "threads": out["Threads"], "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def proc_ctx(pid: int) -> tuple[int, int]:
    """(context switches, threads): voluntary + involuntary switches summed over the process's threads.

    /proc/PID/status counts the main thread only, so every /proc/PID/task/TID/status
    is read. A thread that ends takes its count with it (none of the servers
    ends threads inside a measured window: their client or pool threads live on).
    """
    total = tasks = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
            tasks += 1
        except OSError:  # the thread ended meanwhile
            pass
    return total, tasks


def busy_cpu() -> float:
    """CPU seconds the whole machine spent busy (all CPUs, from /proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def sample(pid: int, full: bool, gen_pid: int | None = None) -> dict[str, Any]:
    """The server's CPU and context switches (and with ``full`` its RSS, threads, fds), the generator's
    and the machine's CPU."""
    extra: dict[str, Any] = {"busy": busy_cpu()}
    extra["ctx"], extra["tasks"] = proc_ctx(pid)
    if gen_pid is not None:
        with contextlib.suppress(OSError):
            extra["gen_cpu"] = proc_cpu(gen_pid)
    if full:
        # Wait (bounded) until the thread count settles: threads of connections
        # that just opened may still be starting.
        deadline = time.monotonic() + 10
        last = proc_status(pid)
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = proc_status(pid)
            if now["threads"] == last["threads"] and now["fds"] == last["fds"]:
                last = now
                break
            last = now
        return {"t": time.monotonic(), "cpu": proc_cpu(pid), **extra, **last}
    return {"t": time.monotonic(), "cpu": proc_cpu(pid), **extra}


def settle(pid: int, baseline: dict[str, Any], within: float) -> float:
    """Wait until the server's threads and fds are back to ``baseline``'s, at most ``within`` s: the time waited."""
    t0 = time.monotonic()
    while True:
        now = proc_status(pid)
        waited = time.monotonic() - t0
        if (now["threads"] <= baseline["threads"] and now["fds"] <= baseline["fds"]) or waited >= within:
            return waited
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ws_handshake_ok(port: int) -> bool:
    """One WebSocket handshake (then a close frame): is the server really serving?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if not data.startswith(b"HTTP/1.1 101"):
                return False
            s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # masked close 1000 (zero mask)
            with contextlib.suppress(OSError):
                s.recv(64)
            return True
    except OSError:
        return False


def spawn(cmd: list[str], cpus: set[int] | None, **kwargs: Any) -> subprocess.Popen[Any]:
    def preexec() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=preexec, **kwargs)
    _children.add(proc)
    return proc


def stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    else:
        # The leader is gone; make sure nothing it started lingers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    _children.discard(proc)


def kill_all_children() -> None:
    for proc in list(_children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(5)
        _children.discard(proc)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class RunConfig:
    python: str
    node: str
    quick: bool
    server_cpus: set[int] | None
    gen_cpus: set[int] | None
    logs: Path
    verbose: bool
    switch_interval: float | None = None
    pg: Any = None  # postgres.Postgres, for the Django scenarios
    tmpdir: str | None = None  # the servers' TMPDIR (the blocking-in-C database files), removed at the end


def run_one(cfg: RunConfig, server: str, scenario: Scenario, tag: str) -> dict[str, Any]:
    """Start ``server``, run ``scenario`` against it, stop it. Returns metrics or an error."""
    script = SERVERS_DIR / SERVERS[server][0]
    port = free_port()
    log_path = cfg.logs / f"{tag}-{scenario.name}-{server}.log"
    with open(log_path, "wb") as log:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **SERVER_ENV.get(server, {}))
        if cfg.tmpdir is not None:
            env["TMPDIR"] = cfg.tmpdir  # a server killed by SIGTERM leaves its files there, not in /tmp
        if cfg.switch_interval is not None:
            env["BENCH_SWITCH_INTERVAL"] = str(cfg.switch_interval)
        probe = None
        if cfg.pg is not None:
            env.update(BENCH_PG_PORT=str(cfg.pg.port), BENCH_PG_DB=PG_DATABASE, BENCH_DB_POOL=str(DB_POOL))
            # The previous server's sessions must be gone, or they would be counted as this one's.
            deadline = time.monotonic() + 15
            while (left := cfg.pg.sessions(PG_DATABASE)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if left:
                return {"ok": False, "error": f"{left} PostgreSQL sessions of the previous server still open"}
            if scenario.op == "db":

                def probe() -> int:
                    return int(cfg.pg.sessions(PG_DATABASE))

        srv = spawn(
            [cfg.python, str(script), str(port)],
            cfg.server_cpus,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(SERVERS_DIR),
        )
        gen: subprocess.Popen[Any] | None = None
        peak: dict[str, int] = {}
        try:
            deadline = time.monotonic() + 30
            while not ws_handshake_ok(port):
                if srv.poll() is not None:
                    raise RuntimeError(f"server exited with {srv.returncode}:\n{tail(log_path)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not serving after 30 s:\n{tail(log_path)}")
                time.sleep(0.05)
            time.sleep(0.2)
            args = scenario.quick if cfg.quick else scenario.full
            cmd = [
                cfg.node,
                str(LOADGEN),
                scenario.kind,
                *args,
                "--url",
                f"ws://127.0.0.1:{port}/",
                "--marks",
                "--timeout",
                str(scenario.timeout),
            ]
            cpu0 = proc_cpu(srv.pid)
            gen = spawn(
                cmd,
                cfg.gen_cpus,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None if cfg.verbose else log,
                bufsize=0,
            )
            marks, result = drive(
                gen, srv, scenario.timeout + 30, peak, probe, cfg.pg.cpu_seconds if probe is not None else None
            )
            gen_rc = gen.wait(15)
            if result is None:
                raise RuntimeError(f"the load generator exited with {gen_rc} without a result:\n{tail(log_path)}")
            metrics = extract(scenario, result, marks)
            if probe is not None:
                metrics[f"{scenario.name}.db_peak"] = max(peak.get("db", 0), *(m["db"] for m in marks.values()))
                metrics[f"{scenario.name}.db_end"] = marks["end"]["db"]
            return {
                "ok": True,
                "metrics": metrics,
                "raw": result,
                "marks": marks,
                "server_cpu_total": proc_cpu(srv.pid) - cpu0,
            }
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.flush()
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            with contextlib.suppress(OSError):
                fds = max(peak.get("fds", 0), len(os.listdir(f"/proc/{srv.pid}/fd")) if srv.poll() is None else 0)
                if fds >= limit - 32 or "Too many open files" in log_path.read_text(errors="replace"):
                    error = f"the server ran out of fds (EMFILE: up to {fds} open, limit {limit}); " + error
            return {"ok": False, "error": error}
        finally:
            if gen is not None:
                stop(gen, grace=2)
            stop(srv)


def drive(
    gen: subprocess.Popen[Any],
    srv: subprocess.Popen[Any],
    timeout: float,
    peak: dict[str, int],
    probe: Any = None,
    pg_cpu: Any = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Read the generator's lines; sample the server at each mark and answer it.

    While waiting, the server's fd count is checked once a second; its peak
    goes to ``peak["fds"]`` (to explain a failure by EMFILE). With ``probe``
    (the server's PostgreSQL sessions), it is called at each mark (``marks[name]["db"]``)
    and once a second (its peak in ``peak["db"]``), and ``pg_cpu`` (PostgreSQL's CPU
    seconds) at each mark.
    """
    assert gen.stdout is not None and gen.stdin is not None
    marks: dict[str, dict[str, Any]] = {}
    result = None
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(gen.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the load generator ran longer than {timeout:.0f} s")
            if not sel.select(min(left, 1.0)):
                if srv.poll() is not None:
                    raise RuntimeError(f"the server died (exit {srv.returncode})")
                with contextlib.suppress(OSError):
                    peak["fds"] = max(peak.get("fds", 0), len(os.listdir(f"/proc/{srv.pid}/fd")))
                if probe is not None:
                    peak["db"] = max(peak.get("db", 0), probe())
                continue
            chunk = os.read(gen.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if msg["type"] == "mark":
                    settled = None
                    if msg.get("settle"):
                        settled = settle(srv.pid, marks[msg["settle"]], float(msg.get("within", 60)))
                    marks[msg["name"]] = sample(srv.pid, msg["sample"], gen.pid)
                    if settled is not None:
                        marks[msg["name"]]["settle_s"] = settled
                    if probe is not None:
                        marks[msg["name"]]["db"] = probe()
                        marks[msg["name"]]["pg_cpu"] = pg_cpu()
                    gen.stdin.write(b"ok\n")
                elif msg["type"] == "result":
                    result = msg
    return marks, result


# --- the table -------------------------------------------------------------


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def ratio_text(ratio: float) -> str:
    return f"{ratio:.0f}" if ratio >= 100 else f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def paired_ratios(
    by_round: dict[str, dict[str, dict[int, dict[str, float]]]], scenario: str, key: str, server: str, peer: str
) -> list[float]:
    """``server``'s value of ``key`` over ``peer``'s, one ratio per round that both completed."""
    ours = by_round.get(scenario, {}).get(server, {})
    theirs = by_round.get(scenario, {}).get(peer, {})
    ratios = []
    for rnd, metrics in ours.items():
        a, b = metrics.get(key), theirs.get(rnd, {}).get(key)
        if a is not None and b:
            ratios.append(a / b)
    return ratios


def table(
    results: dict[str, dict[str, dict[str, list[float]]]],
    errors: dict[tuple[str, str], list[str]],
    servers: list[str],
    scenarios: list[Scenario],
    quick: bool,
    rounds: int,
    baseline: str = BASELINE,
    by_round: dict[str, dict[str, dict[int, dict[str, float]]]] | None = None,
) -> str:
    """The table of one group. With ``by_round`` (each server's metrics by round), a ratio is the
    median of the ratios within each round, where the two servers ran one after the other, with its
    range over the rounds; otherwise (or when no round has both) the ratio of the two medians."""
    peers = [s for s in servers if s != baseline] if baseline in servers else []
    header = ["metric", "better"] + servers + [f"{baseline[:2]}/{p}" for p in peers]
    rows = [header]
    starred = False
    for scenario in scenarios:
        for metric in metric_list(scenario, quick):
            row = [metric.label, {True: "higher", False: "lower", None: ""}[metric.higher_is_better]]
            medians: dict[str, float | None] = {}
            for server in servers:
                values = results.get(scenario.name, {}).get(server, {}).get(metric.key, [])
                failed = len(errors.get((scenario.name, server), []))
                if not values:
                    medians[server] = None
                    row.append("FAILED" if failed else "-")
                    continue
                med = statistics.median(values)
                medians[server] = med
                cell = fmt(med)
                if len(values) > 1:
                    cell += f" ({fmt(min(values))}–{fmt(max(values))})"  # noqa: RUF001
                if failed:
                    cell += f" [{failed} failed]"
                if sum(results[scenario.name][server].get(f"{scenario.name}.incomplete", [])):
                    cell = "*" + cell
                    starred = True
                row.append(cell)
            for peer in peers:
                a, b = medians.get(baseline), medians.get(peer)
                if a is None or b is None or b == 0 or metric.higher_is_better is None:
                    row.append("")
                else:
                    paired = paired_ratios(by_round or {}, scenario.name, metric.key, baseline, peer)
                    if paired:
                        text = ratio_text(statistics.median(paired)) + "×"  # noqa: RUF001
                        if len(paired) > 1:
                            text += f" ({ratio_text(min(paired))}–{ratio_text(max(paired))})"  # noqa: RUF001
                    else:
                        text = ratio_text(a / b) + "×"  # noqa: RUF001
                    row.append(text)
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for i, r in enumerate(rows):
        cells = [c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    note = (
        f"Median of {rounds} round(s), (min–max) over the rounds; {baseline[:2]}/peer = {baseline} / peer, the median "  # noqa: RUF001
        "(min–max) of the ratios within each round (the two ran one after the other), so that a machine "  # noqa: RUF001
        "running faster or slower from one round to the next moves both sides of a ratio alike "
        "(above 1 is better for 'higher' rows, below 1 for 'lower' rows)."
    )
    if starred:
        note += (
            "\n* some repetitions did not complete within --wait-timeout: their time is a lower bound (the deliveries "
            "counted by then give the rate); see the failures below."
        )
    return "\n".join(lines) + "\n" + note


def machine_info(python: str, node: str) -> str:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    code = (
        "import importlib.metadata as m, platform\n"
        "v = lambda n: m.version(n) if n else ''\n"
        "out = ['Python ' + platform.python_version()]\n"
        "for n in ('syncaerys', 'websockets', 'flask-sock', 'simple-websocket', 'werkzeug', 'flask',\n"
        "          'gevent', 'greenlet', 'picows', 'aiofastnet', 'django', 'psycopg', 'psycopg-pool',\n"
        "          'channels', 'daphne', 'twisted', 'uvicorn', 'uvloop', 'httptools', 'asgiref'):\n"
        "    try: out.append(n + ' ' + m.version(n))\n"
        "    except Exception: pass\n"
        "import sqlite3\n"
        "out.append('SQLite ' + sqlite3.sqlite_version)\n"
        "try:\n"
        "    import syncaerys, syncaerys.protocol.mask as k\n"
        "    out.append('syncaerys from ' + syncaerys.__path__[0])\n"
        "    out.append('C unmask ' + ('built' if k.SPEEDUPS else 'NOT built (pure Python unmask)'))\n"
        "    import syncaerys.client.connection, syncaerys.client.sendqueue, syncaerys.compiled as c\n"
        "    out.append('compiled modules (SYNCAERYS_COMPILE=1): ' + str(len(c.compiled_modules())) + ' of ' + str(len(c.MODULES)))\n"
        "except Exception: pass\n"
        "print(', '.join(out))\n"
    )
    try:
        versions = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as exc:  # informational only
        versions = f"? ({exc})"
    try:
        node_v = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        ws_v = json.loads((HERE / "loadgen" / "node_modules" / "ws" / "package.json").read_text())["version"]
    except Exception:
        node_v, ws_v = "?", "?"
    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "syncaerys"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        tree = f"syncaerys tree at {commit}" + (" with uncommitted changes under syncaerys/" if dirty else "")
    except Exception:
        tree = "syncaerys tree: ?"
    return (
        f"machine: {cpu}, {os.cpu_count()} CPUs, {mem} RAM, Linux {platform.release()}\n"
        f"servers: {versions}; {tree}\nload generator: Node.js {node_v}, ws {ws_v}"
    )


# --- main ------------------------------------------------------------------


def with_connections(scenario: Scenario, n: int) -> Scenario:
    """The burst or scale scenario with ``n`` connections (both modes)."""

    def patch(args: list[str]) -> list[str]:
        args = list(args)
        if scenario.kind in ("burst", "many"):
            args[args.index("--clients") + 1] = str(n)
        else:
            args[args.index("--steps") + 1] = ",".join(str(x) for x in (100, n // 5, n) if x >= 100)
        return args

    return Scenario(
        scenario.name,
        scenario.kind,
        patch(scenario.full),
        patch(scenario.quick),
        scenario.timeout,
        scenario.title,
        scenario.group,
        scenario.servers,
    )


def raise_fd_limit(need: int) -> None:
    """Soft limit to the hard one; the hard one up to ``need`` where allowed (root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError):
            print(
                f"warning: the fd hard limit is {hard}, below the {need} the biggest scenarios may need "
                f"(raise it with `ulimit -Hn {need}` as root)",
                file=sys.stderr,
            )
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_postgres() -> Any:
    """The Django scenarios' PostgreSQL (postgres.py): started once for the run, stopped at its end."""
    import postgres

    bindir = postgres.binaries()
    if bindir is None:
        sys.exit("the Django scenarios need PostgreSQL's server binaries (Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        sys.exit(
            "the Django scenarios need psycopg in the runner's environment: pip install -r benchmarks/requirements.txt"
        )
    pg = postgres.Postgres(bindir, PG_MAX_CONNECTIONS)
    pg.start(lambda cmd, **kwargs: spawn(cmd, None, **kwargs))
    pg.create_database(PG_DATABASE)
    with pg.connect() as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    print(f"PostgreSQL {version} on 127.0.0.1:{pg.port} (max_connections {PG_MAX_CONNECTIONS})", file=sys.stderr)
    return pg


def parse_cpus(text: str | None) -> set[int] | None:
    if not text:
        return None
    return {int(x) for x in text.split(",")}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--group",
        choices=[*GROUPS, "all"],
        default="raw",
        help="the scenarios and servers to run by default: raw (the default), blocking, django, scale, "
        "or all (every table)",
    )
    parser.add_argument(
        "--servers",
        default=None,
        help=f"comma-separated, of: {', '.join(SERVERS)} (default: each group's; every one given runs every scenario)",
    )
    parser.add_argument(
        "--scenarios", default=None, help=f"comma-separated, of: {', '.join(SCENARIOS)} (default: the group's)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3, --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer clients and messages, shorter")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the servers (default: this one)")
    parser.add_argument("--node", default="node", help="Node.js for the load generator")
    parser.add_argument("--server-cpus", help="pin every server to these CPUs, e.g. 0 (default: not pinned)")
    parser.add_argument("--gen-cpus", help="pin the load generator to these CPUs, e.g. 1 (default: not pinned)")
    parser.add_argument(
        "--connections",
        type=int,
        default=None,
        help="connections of the burst and scale scenarios instead of 5,000, and of scale10k instead of 10,000 "
        "(--quick: 1,000)",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval() in every Python server, in seconds (default: Python's 0.005, untouched)",
    )
    parser.add_argument("--seed", type=int, default=None, help="shuffle the first round's server order with it")
    parser.add_argument(
        "--json", type=Path, help="also write every raw result here (default: benchmarks/results/<time>.json)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the load generator's progress lines")
    args = parser.parse_args()

    groups = GROUPS if args.group == "all" else [args.group]
    if args.scenarios is None:
        scenario_names = [name for name, sc in SCENARIOS.items() if sc.group in groups]
    else:
        scenario_names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in scenario_names:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}")
    scenarios = [SCENARIOS[s] for s in scenario_names]
    # Which servers run each scenario: those given, else its group's.
    if args.servers is not None:
        chosen = [s.strip() for s in args.servers.split(",") if s.strip()]
        for s in chosen:
            if s not in SERVERS:
                parser.error(f"unknown server {s!r}; choose from {', '.join(SERVERS)}")
        runs_on = {sc.name: chosen for sc in scenarios}
    else:
        runs_on = {sc.name: sc.servers or GROUP_SERVERS[sc.group] for sc in scenarios}
    servers = [s for s in SERVERS if any(s in runs_on[sc.name] for sc in scenarios)]
    if args.servers is not None:
        servers = chosen
    if args.connections is not None:
        if args.connections < 200:
            parser.error("--connections must be at least 200")
        scenarios = [
            with_connections(s, args.connections) if s.kind in ("burst", "scale", "many") else s for s in scenarios
        ]
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        parser.error("--rounds must be at least 1")

    if not (HERE / "loadgen" / "node_modules" / "ws").is_dir():
        sys.exit("the load generator is not installed: run  npm ci --prefix benchmarks/loadgen")
    for s in servers:
        modules = SERVERS[s][1]
        check = subprocess.run([args.python, "-c", "import " + ", ".join(modules)], capture_output=True)
        if check.returncode:
            sys.exit(
                f"{s}: {args.python} cannot import {', '.join(modules)}; install the peers with\n"
                f"  {args.python} -m pip install -e . -r benchmarks/requirements.txt"
            )

    # 5,000 connections need 5,000+ fds in the generator and up to 4 per
    # connection in a server (websockets' sync server: socket, socketpair,
    # epoll); both inherit this limit (the servers also raise their soft one).
    big = args.connections or (1000 if args.quick else 10000 if any(s.kind == "many" for s in scenarios) else 5000)
    need = big * 4 + 1000 if any(s.kind in ("burst", "scale", "many") for s in scenarios) else 5000
    raise_fd_limit(need)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = RESULTS / f"logs-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    cfg = RunConfig(
        args.python,
        args.node,
        args.quick,
        parse_cpus(args.server_cpus),
        parse_cpus(args.gen_cpus),
        logs,
        args.verbose,
        args.switch_interval,
    )
    cfg.tmpdir = tempfile.mkdtemp(prefix="syncaerys-bench-run-")
    if any(sc.op == "db" for sc in scenarios):
        cfg.pg = start_postgres()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background of a
    # non-interactive shell inherits SIGINT ignored.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    info = machine_info(args.python, args.node)
    print(info, file=sys.stderr)
    b0, t0 = busy_cpu(), time.monotonic()
    time.sleep(1.0)
    idle_load = 100 * (busy_cpu() - b0) / (time.monotonic() - t0)
    if idle_load > 15:
        print(
            f"warning: before starting, other processes use {idle_load:.0f} % of a CPU: the figures will be "
            "disturbed (see the 'other processes CPU %' rows)",
            file=sys.stderr,
        )
    order = list(servers)
    if args.seed is not None:
        random.Random(args.seed).shuffle(order)
    print(
        "runs: " + "; ".join(f"{sc.name}: {', '.join(s for s in order if s in runs_on[sc.name])}" for sc in scenarios),
        file=sys.stderr,
    )
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    by_round: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    errors: dict[tuple[str, str], list[str]] = {}
    raw: list[dict[str, Any]] = []
    started = time.monotonic()
    interrupted = False
    try:
        for rnd in range(rounds):
            rotated = order[rnd % len(order) :] + order[: rnd % len(order)]
            print(f"round {rnd + 1}/{rounds}: {', '.join(rotated)}", file=sys.stderr)
            for scenario in scenarios:
                for server in [s for s in rotated if s in runs_on[scenario.name]]:
                    t0 = time.monotonic()
                    out = run_one(cfg, server, scenario, f"r{rnd + 1}")
                    took = time.monotonic() - t0
                    raw.append({"round": rnd + 1, "scenario": scenario.name, "server": server, **out})
                    if out["ok"]:
                        by_round.setdefault(scenario.name, {}).setdefault(server, {})[rnd] = out["metrics"]
                        bucket = results.setdefault(scenario.name, {}).setdefault(server, {})
                        for key, value in out["metrics"].items():
                            bucket.setdefault(key, []).append(value)
                        first = metric_list(scenario, args.quick)[0]
                        summary = f"{fmt(out['metrics'][first.key])} ({first.label.split(': ', 1)[-1]})"
                    else:
                        errors.setdefault((scenario.name, server), []).append(out["error"])
                        summary = "FAILED: " + out["error"].splitlines()[0]
                    print(f"  {scenario.name:<11} {server:<17} {summary}  [{took:.1f} s]", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping the servers and the generator; partial table below", file=sys.stderr)
    finally:
        if cfg.pg is not None:
            cfg.pg.stop()
        kill_all_children()
        shutil.rmtree(cfg.tmpdir, ignore_errors=True)
    elapsed = time.monotonic() - started

    json_path = args.json or RESULTS / f"{stamp}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps(
            {
                "info": info,
                "quick": args.quick,
                "rounds": rounds,
                "elapsed": elapsed,
                "servers": servers,
                "runs_on": runs_on,
                "runs": raw,
            },
            indent=1,
        )
    )
    mode = "quick" if args.quick else "full"
    print()
    print(f"syncaerys benchmark ({mode}, {rounds} round(s), {elapsed / 60:.1f} min, {dt.date.today()})")
    print(info)
    pins = []
    if cfg.server_cpus:
        pins.append(f"servers pinned to CPU {args.server_cpus}")
    if cfg.gen_cpus:
        pins.append(f"generator pinned to CPU {args.gen_cpus}")
    if cfg.switch_interval is not None:
        pins.append(f"sys.setswitchinterval({cfg.switch_interval}) in every server")
    if pins:
        print("; ".join(pins))
    for group in GROUPS:
        in_group = [sc for sc in scenarios if sc.group == group]
        if not in_group:
            continue
        columns = [s for s in servers if any(s in runs_on[sc.name] for sc in in_group)]
        print()
        if len({sc.group for sc in scenarios}) > 1:
            print(f"{group} table:")
        print(table(results, errors, columns, in_group, args.quick, rounds, BASELINES[group], by_round))
    others = [
        v
        for sc in results.values()
        for per_server in sc.values()
        for key, vals in per_server.items()
        if key.endswith(".other")
        for v in vals
    ]
    if others and max(others) > 15:
        print(
            f"\nwarning: other processes used up to {max(others):.0f} % of a CPU during the measured windows "
            f"(median {statistics.median(others):.0f} %; before the run {idle_load:.0f} %): this machine was "
            "not idle, compare ratios rather than absolute figures, and rerun on a quiet machine"
        )
    incomplete = [
        (r["round"], r["scenario"], r["server"], r["raw"])
        for r in raw
        if r["ok"] and r["metrics"].get(f"{r['scenario']}.incomplete")
    ]
    if errors or incomplete:
        print("\nfailures:")
        for (scenario_name, server), errs in errors.items():
            for err in errs:
                print(f"  {scenario_name} / {server}: {err.splitlines()[0]}")
        for rnd, scenario_name, server, res in incomplete:
            got = [
                f"{r['received']} in {r['elapsed']:.1f} s" + ("" if r["complete"] else " (incomplete)")
                for r in res["reps"]
            ]
            print(f"  {scenario_name} / {server} round {rnd}: " + "; ".join(got))
    print(f"\nraw results: {json_path}; server logs: {logs}")
    return 130 if interrupted else (1 if errors else 0)


if __name__ == "__main__":
    sys.exit(main())
