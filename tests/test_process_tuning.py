"""The process-wide settings of the standalone server: switch interval and CPU pinning (SPEC 6)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import syncaerys
from syncaerys.process import DEFAULT_SWITCH_INTERVAL
from syncaerys.process import pin_to_cpus
from syncaerys.process import set_switch_interval
from tests.test_run import echo_server
from tests.utils import http_request
from tests.utils import serve

#: A WSGI app under run() that reports the process's settings as JSON.
REPORTER = """
import json, os, sys

import syncaerys

def app(environ, start_response):
    body = json.dumps({{"interval": sys.getswitchinterval(), "cpus": sorted(os.sched_getaffinity(0))}}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]

port = int(sys.argv[sys.argv.index("--port") + 1])
syncaerys.run(app, host="127.0.0.1", port=port{extra})
"""

needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")


def report(tmp_path: Path, extra: str = "") -> dict[str, object]:
    script = tmp_path / "reporter.py"
    script.write_text(REPORTER.format(extra=extra))
    with echo_server(tmp_path, "reporter", script) as (_, port):
        status, _, body = http_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200, body
    result: dict[str, object] = json.loads(body)
    return result


@needs_affinity
def test_run_sets_the_switch_interval_and_leaves_cpus_alone_by_default(tmp_path: Path) -> None:
    figures = report(tmp_path)
    assert figures["interval"] == pytest.approx(DEFAULT_SWITCH_INTERVAL)
    assert figures["cpus"] == sorted(os.sched_getaffinity(0))


@needs_affinity
def test_run_pins_the_process_to_the_cpu_it_is_given(tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    figures = report(tmp_path, f", cpu={cpu}, switch_interval=0.02")
    assert figures["cpus"] == [cpu]
    assert figures["interval"] == pytest.approx(0.02)


def test_run_with_switch_interval_none_keeps_pythons_setting(tmp_path: Path) -> None:
    assert report(tmp_path, ", switch_interval=None")["interval"] == pytest.approx(0.005)


@needs_affinity
def test_cli_cpu_and_switch_interval_flags(tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    (tmp_path / "reporter_app.py").write_text(REPORTER.format(extra="").split("port = ")[0])
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nfrom syncaerys.cli import main\n"
        f"main(['reporter_app:app', '--port', sys.argv[sys.argv.index('--port') + 1], '--cpu', '{cpu}', "
        "'--switch-interval', '0.03'])\n"
    )
    with echo_server(tmp_path, "cli", launcher) as (_, port):
        status, _, body = http_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200, body
    figures = json.loads(body)
    assert figures == {"interval": pytest.approx(0.03), "cpus": [cpu]}


def test_a_server_in_someone_elses_process_leaves_the_interval_alone() -> None:
    before = sys.getswitchinterval()
    with serve(syncaerys.Websocket()):
        assert sys.getswitchinterval() == before


@pytest.mark.parametrize("bad", [-1, True, "0", [], 0.5])
def test_bad_cpu_values_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="cpu"):
        pin_to_cpus(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -0.1])
def test_bad_switch_intervals_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="switch_interval"):
        set_switch_interval(bad)
