"""syncaerys's signal handlers survive a second signal that lands inside them.

A Python signal handler runs in the main thread between two of its bytecodes, and a second
signal runs the handler again inside the first. gunicorn's worker gets SIGTERM twice on every
stop (its process group's and the master's): when the handler set a ``threading.Event``, the
second ``set`` waited for the lock the first one held, and the worker hung, its clients open,
until gunicorn's graceful timeout killed it (a CI failure of tests/django/test_hosts.py).
tests/signal_handlers.py runs each handler again at every line it executes; a deadlock there is
reported by faulthandler with the stacks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from syncaerys.signal_flag import SignalFlag
from tests.utils import PROMPTLY

HELPER = Path(__file__).resolve().parent / "signal_handlers.py"
ROOT = HELPER.parents[1]


@pytest.mark.parametrize("host", ["gunicorn-term", "gunicorn-int", "run"])
def test_each_handler_survives_itself_at_every_line(host: str) -> None:
    if host.startswith("gunicorn"):
        pytest.importorskip("gunicorn")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(HELPER), host], capture_output=True, text=True, timeout=6 * PROMPTLY, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["nested"] >= 2, outcome  # the handler ran lines, and each ran it again
    if host == "run":
        assert outcome["returned"], outcome  # syncaerys.run stopped and returned


def test_a_raised_flag_wakes_every_waiter_and_stays_raised() -> None:
    flag = SignalFlag()
    woken: list[bool] = []
    waiters = [threading.Thread(target=lambda: woken.append(flag.wait(10 * PROMPTLY))) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    assert not flag.is_raised()
    flag.raise_flag()
    flag.raise_flag()  # again: nothing more
    for waiter in waiters:
        waiter.join(10 * PROMPTLY)
    assert woken == [True, True, True]
    assert flag.is_raised() and flag.wait(0) and flag.wait()
    flag.close()


def test_a_flag_not_raised_times_out() -> None:
    flag = SignalFlag()
    assert flag.wait(0.01) is False
    assert not flag.is_raised()
    flag.close()
    assert flag.wait() is True  # closed: nothing will raise it, so nobody waits for it


def test_a_signal_raises_the_flag_the_main_thread_waits_on() -> None:
    flag = SignalFlag()
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: flag.raise_flag())
    try:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        assert flag.wait(10 * PROMPTLY)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        flag.close()
