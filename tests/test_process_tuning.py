"""Process settings of the standalone server: switch interval, CPU pinning, SCHED_BATCH (docs/tutorial/deploy.md)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import syncaerys
from syncaerys.standalone.process import AUTO_SWITCH_FLOOR
from syncaerys.standalone.process import DEFAULT_THREAD_STACK_SIZE
from syncaerys.standalone.process import pin_to_cpus
from syncaerys.standalone.process import set_switch_interval
from tests.test_run import echo_server
from tests.utils import http_request
from tests.utils import serve

#: A WSGI app under run() that reports the process's settings as JSON.
REPORTER = """
import json, os, sys, threading

import syncaerys

class Nested:
    # Each level is a call through C (type.__call__ -> __init__): the deepest stack per Python frame.
    def __init__(self, depth):
        self.child = Nested(depth - 1) if depth else None

def recursion():
    try:
        Nested(sys.getrecursionlimit() * 2)
    except RecursionError:
        return "RecursionError"
    return "no error"

def app(environ, start_response):
    # The policy of the thread serving this request: a client thread of the server.
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    figures = {{"interval": sys.getswitchinterval(), "cpus": sorted(os.sched_getaffinity(0)), "policy": policy}}
    figures["stack_size"] = threading.stack_size()
    figures["recursion"] = recursion()  # a stack overflow would kill the process instead
    body = json.dumps(figures).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]

port = int(sys.argv[sys.argv.index("--port") + 1])
syncaerys.run(app, host="127.0.0.1", port=port{extra})
"""

needs_batch = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="no SCHED_BATCH on this platform")
needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")


def report(tmp_path: Path, extra: str = "") -> dict[str, object]:
    script = tmp_path / "reporter.py"
    script.write_text(REPORTER.format(extra=extra))
    with private_cpu_claims(tmp_path), echo_server(tmp_path, "reporter", script) as (_, port):
        status, _, body = http_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200, body
    result: dict[str, object] = json.loads(body)
    return result


@contextlib.contextmanager
def private_cpu_claims(tmp_path: Path) -> Iterator[None]:
    """Child processes claim CPUs in ``tmp_path`` (TMPDIR), not beside other syncaerys processes of the host."""
    claims = tmp_path / "tmp"
    claims.mkdir(exist_ok=True)
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(claims)
    try:
        yield
    finally:
        if before is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = before


@needs_affinity
def test_run_sets_the_switch_interval_and_pins_to_one_claimed_cpu_by_default(tmp_path: Path) -> None:
    figures = report(tmp_path)
    assert figures["interval"] == pytest.approx(AUTO_SWITCH_FLOOR)
    allowed = sorted(os.sched_getaffinity(0))
    # Nobody else claims CPUs in this private directory: the first allowed one is free.
    assert figures["cpus"] == (allowed[:1] if len(allowed) > 1 else allowed)


@needs_affinity
def test_run_with_cpu_none_leaves_the_affinity_alone(tmp_path: Path) -> None:
    assert report(tmp_path, ", cpu=None")["cpus"] == sorted(os.sched_getaffinity(0))


CLAIMER = """
import sys, time
from collections.abc import Iterator
from pathlib import Path
from syncaerys.standalone.process import claim_cpu
print(claim_cpu(Path(sys.argv[1])), flush=True)
sys.stdin.read()  # hold the claim until the test closes our stdin
"""


@needs_affinity
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_auto_claims_distinct_cpus_until_none_is_left_and_releases_them_at_exit(tmp_path: Path) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    holders = []
    try:
        claimed = []
        for _ in allowed:
            holder = subprocess.Popen(
                [sys.executable, "-c", CLAIMER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            holders.append(holder)
            assert holder.stdout is not None
            claimed.append(int(holder.stdout.readline()))
        assert sorted(claimed) == allowed
        # Every CPU is held: one more process pins nothing.
        extra = subprocess.run([sys.executable, "-c", CLAIMER, str(tmp_path)], input="", capture_output=True, text=True)
        assert extra.stdout.strip() == "None"
        # A process that ends releases its CPU (the kernel drops its lock).
        first = holders.pop(0)
        assert first.stdin is not None
        first.stdin.close()
        assert first.wait(timeout=10) == 0
        again = subprocess.run([sys.executable, "-c", CLAIMER, str(tmp_path)], input="", capture_output=True, text=True)
        assert int(again.stdout) == claimed[0]
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


@needs_affinity
def test_run_pins_the_process_to_the_cpu_it_is_given(tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    figures = report(tmp_path, f", cpu={cpu}, switch_interval=0.02")
    assert figures["cpus"] == [cpu]
    assert figures["interval"] == pytest.approx(0.02)


def test_run_sets_a_1_mib_thread_stack_that_holds_recursion_to_the_limit(tmp_path: Path) -> None:
    figures = report(tmp_path)
    assert figures["stack_size"] == DEFAULT_THREAD_STACK_SIZE == 1 << 20
    assert figures["recursion"] == "RecursionError"


def test_run_with_thread_stack_size_none_keeps_the_platforms(tmp_path: Path) -> None:
    assert report(tmp_path, ", thread_stack_size=None")["stack_size"] == 0


def test_run_with_a_given_thread_stack_size(tmp_path: Path) -> None:
    assert report(tmp_path, ", thread_stack_size=4 << 20")["stack_size"] == 4 << 20


@pytest.mark.parametrize(("bad", "error"), [(1000, ValueError), ("1M", TypeError), (True, TypeError), (1.5, TypeError)])
def test_bad_thread_stack_sizes_are_refused_before_anything_changes(bad: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="thread_stack_size"):
        syncaerys.run(lambda environ, start_response: [], port=0, thread_stack_size=bad)  # type: ignore[arg-type]
    assert threading.stack_size() == 0


def test_run_with_switch_interval_none_keeps_pythons_setting(tmp_path: Path) -> None:
    assert report(tmp_path, ", switch_interval=None")["interval"] == pytest.approx(0.005)


@needs_affinity
def test_cli_cpu_and_switch_interval_flags(tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    (tmp_path / "reporter_app.py").write_text(REPORTER.format(extra="").split("port = ")[0])
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nfrom syncaerys.standalone.cli import main\n"
        f"main(['reporter_app:app', '--port', sys.argv[sys.argv.index('--port') + 1], '--cpu', '{cpu}', "
        "'--switch-interval', '0.03', '--no-batch-scheduling', '--thread-stack-size', '512'])\n"
    )
    with private_cpu_claims(tmp_path), echo_server(tmp_path, "cli", launcher) as (_, port):
        status, _, body = http_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200, body
    figures = json.loads(body)
    assert figures["interval"] == pytest.approx(0.03)
    assert figures["stack_size"] == 512 * 1024
    assert figures["cpus"] == [cpu]
    if hasattr(os, "SCHED_OTHER"):
        assert figures["policy"] == os.SCHED_OTHER


@needs_batch
def test_run_schedules_its_threads_as_batch_by_default(tmp_path: Path) -> None:
    assert report(tmp_path)["policy"] == os.SCHED_BATCH


@needs_batch
def test_run_with_batch_scheduling_false_keeps_the_default_policy(tmp_path: Path) -> None:
    assert report(tmp_path, ", batch_scheduling=False")["policy"] == os.SCHED_OTHER


def test_batch_scheduling_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="batch_scheduling must be True or False"):
        syncaerys.run(syncaerys.Websocket(), batch_scheduling="no")  # type: ignore[arg-type]


def test_a_server_in_someone_elses_process_leaves_the_interval_alone() -> None:
    before = sys.getswitchinterval()
    with serve(syncaerys.Websocket()):
        assert sys.getswitchinterval() == before


@pytest.mark.parametrize("bad", [-1, True, "0", "first", [], 0.5])
def test_bad_cpu_values_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="cpu"):
        pin_to_cpus(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -0.1, True, "fast", "0.05"])
def test_bad_switch_intervals_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="switch_interval"):
        set_switch_interval(bad)


def test_run_refuses_a_bad_switch_interval_before_changing_anything() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(ValueError, match="switch_interval must be 'auto', None or a number"):
        syncaerys.run(lambda environ, start_response: [], switch_interval="fast")  # type: ignore[arg-type]
    assert sys.getswitchinterval() == before


#: A gateway under run() whose clients ask for the process's switch interval; "auto" scaled so
#: that 11 clients reach what 2,200 would (50 µs each), to keep the test small.
FOLLOWER = """
import sys

import syncaerys
from syncaerys.standalone import process

process.AUTO_SWITCH_PER_CLIENT = 0.01


class Interval(syncaerys.Websocket):
    def on_start(self, endpoint):
        self.endpoint = endpoint

    def on_data(self, client_id, message):
        message.result()
        self.endpoint.send(repr(sys.getswitchinterval()), client_id)


port = int(sys.argv[sys.argv.index("--port") + 1])
syncaerys.run(syncaerys.websocket(Interval()), host="127.0.0.1", port=port, cpu=None)
"""


@pytest.mark.timeout(60)
def test_auto_switch_interval_follows_the_number_of_clients(tmp_path: Path) -> None:
    from websockets.sync.client import connect

    from tests.utils import wait_until

    script = tmp_path / "follower.py"
    script.write_text(FOLLOWER)

    with echo_server(tmp_path, "follower", script) as (_, port):
        url = f"ws://127.0.0.1:{port}/"
        with connect(url) as probe:

            def interval() -> float:
                probe.send("?")
                return float(probe.recv(timeout=5))

            assert interval() == pytest.approx(AUTO_SWITCH_FLOOR)
            with contextlib.ExitStack() as others:
                for _ in range(10):
                    others.enter_context(connect(url))
                # Checked once a second: 11 clients at 0.01 s each.
                wait_until(lambda: interval() == pytest.approx(0.11), timeout=10, interval=0.2)
            wait_until(lambda: interval() == pytest.approx(AUTO_SWITCH_FLOOR), timeout=10, interval=0.2)
