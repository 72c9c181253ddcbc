"""``python -m syncaerys app:Handler --reload`` restarts the server when the source changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.utils import PROMPTLY
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parents[1]

APP = """
import syncaerys
from helper import GREETING

class Hello(syncaerys.Websocket):
    def on_start(self, endpoint):
        self.endpoint = endpoint

    def on_open(self, client_id, data):
        self.endpoint.send(GREETING, client_id)
"""


def greeting(port: int) -> str | None:
    try:
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=PROMPTLY) as ws:
            return str(ws.recv(timeout=PROMPTLY))
    except (OSError, TimeoutError, ConnectionClosed):
        return None


def write(path: Path, text: str) -> None:
    stamp = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(textwrap.dedent(text))
    os.utime(path, (stamp + 2, stamp + 2))  # a change the poll cannot miss, whatever the clock's grain


@pytest.mark.timeout(90)
def test_a_change_in_an_imported_module_restarts_the_server(tmp_path: Path) -> None:
    write(tmp_path / "app.py", APP)
    write(tmp_path / "helper.py", 'GREETING = "version 1"\n')
    port = free_port()
    log_path = tmp_path / "reloader.log"
    with log_path.open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "syncaerys", "app:Hello", "--port", str(port), "--cpu", "none", "--reload"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: greeting(port) == "version 1", timeout=6 * PROMPTLY, interval=0.1)
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=PROMPTLY) as ws:
            assert ws.recv(timeout=PROMPTLY) == "version 1"
            write(tmp_path / "helper.py", 'GREETING = "version 2"\n')  # not the target's own file
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=4 * PROMPTLY)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        wait_until(lambda: greeting(port) == "version 2", timeout=6 * PROMPTLY, interval=0.1)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(4 * PROMPTLY) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    output = log_path.read_text()
    assert "helper.py changed, restarting" in output, output
    assert "Traceback" not in output, output
    assert greeting(port) is None  # the child is gone too


@pytest.mark.timeout(120)
def test_the_server_comes_back_once_a_syntax_error_is_fixed(tmp_path: Path) -> None:
    """It said "watching 0 files" after an import error and never restarted, whatever was fixed."""
    write(tmp_path / "app.py", APP)
    write(tmp_path / "helper.py", 'GREETING = "version 1\n')  # a SyntaxError from the first start
    port = free_port()
    log_path = tmp_path / "reloader.log"
    with log_path.open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "syncaerys", "app:Hello", "--port", str(port), "--cpu", "none", "--reload"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "waiting for a change" in log_path.read_text(), timeout=6 * PROMPTLY, interval=0.1)
        assert greeting(port) is None
        write(tmp_path / "helper.py", 'GREETING = "version 1"\n')  # the module that failed, imported by the target
        wait_until(lambda: greeting(port) == "version 1", timeout=6 * PROMPTLY, interval=0.1)
        write(tmp_path / "app.py", APP + "\ndef broken(:\n")  # the target's own file
        wait_until(lambda: log_path.read_text().count("waiting for a change") == 2, timeout=6 * PROMPTLY)
        write(tmp_path / "app.py", APP.replace("GREETING, client_id", 'GREETING + " again", client_id'))
        wait_until(lambda: greeting(port) == "version 1 again", timeout=6 * PROMPTLY, interval=0.1)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(4 * PROMPTLY) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    output = log_path.read_text()
    assert "watching 0 files" not in output, output
    assert "helper.py changed, restarting" in output and "app.py changed, restarting" in output, output
