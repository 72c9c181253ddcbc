"""The in-process benchmark tools still run against the current code (a smoke run; no timings judged)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_tool(script: str, *args: str) -> str:
    """``benchmarks/<script> <args>`` in a subprocess (100 s at most); its output, once it exited 0."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.timeout(120)
def test_loop_bench_runs_the_whole_echo_path_and_prints_each_row() -> None:
    # A few thousand echoes through a real server on 127.0.0.1: the tool hangs (and the
    # run times out) if an echo is lost, and fails if the upgrade is refused.
    output = run_tool("loop_bench.py", "--messages", "3000", "--rounds", "1")
    rows = dict(re.findall(r"^(.+?)\s+(-?[0-9.]+) µs per message", output, re.MULTILINE))
    assert set(rows) == {"bare send/recv round", "threads-floor's loop", "syncaerys", "syncaerys less the floor"}
    assert float(rows["syncaerys"]) > 0


@pytest.mark.timeout(120)
def test_loop_bench_ring_hands_every_message_to_the_next_connection() -> None:
    # Three connections in a ring, on both servers: one lost hand-off stops the ring, and the
    # tool then exits non-zero after its wait (or the run times out).
    output = run_tool("loop_bench.py", "--ring", "3", "--messages", "2000", "--rounds", "1")
    assert "a ring of 3 connections" in output
    rows = dict(re.findall(r"^(.+?)\s+(-?[0-9.]+) µs per message", output, re.MULTILINE))
    assert set(rows) == {"threads-floor's loop", "syncaerys", "syncaerys less the floor"}
    assert float(rows["syncaerys"]) > 0 and float(rows["threads-floor's loop"]) > 0


@pytest.mark.timeout(120)
def test_fanout_bench_broadcasts_to_every_client_and_prints_each_row() -> None:
    # 20 clients through a real server: the tool exits non-zero if an upgrade is refused or a
    # client never opens, and hangs (the run times out) if the warm-up broadcast is not delivered.
    output = run_tool("fanout_bench.py", "--clients", "20", "--broadcasts", "5", "--rounds", "1")
    rows = dict(re.findall(r"^(.+?)\s+(-?[0-9.]+) µs user", output, re.MULTILINE))
    assert set(rows) == {"threads-floor's loop", "syncaerys", "syncaerys less the floor"}, output
