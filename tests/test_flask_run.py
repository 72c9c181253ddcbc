"""An application file that ends with an unguarded ``syncaerys.run(app)``, imported by ``flask run``
or ``python -m syncaerys``: the importing program serves it on the port it was asked for, and
``run()`` says why it did not take the process over."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.utils import PROMPTLY
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STARTUP = 6 * PROMPTLY

UNGUARDED = """
import flask
import syncaerys
import syncaerys.flask

class Echo(syncaerys.Websocket):
    def on_start(self, endpoint):
        self.endpoint = endpoint

    def on_data(self, client_id, message):
        self.endpoint.send(message.result(), client_id)

app = flask.Flask(__name__)
syncaerys.flask.Websockets(app).route("/echo", Echo())
syncaerys.run(app, port={own_port}, cpu=None)
"""


@contextlib.contextmanager
def serving(command: list[str], cwd: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until it accepts connections on ``port``; SIGINT it at the end."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_until(lambda: process.poll() is not None or accepts(port), timeout=STARTUP, interval=0.05)
        except AssertionError:
            raise AssertionError(f"{command} is not serving on {port}: {log_path.read_text()}") from None
        assert process.poll() is None, log_path.read_text()
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STARTUP)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


COMMANDS = {
    "flask run": ["{bin}/flask", "--app", "chat", "run", "--port", "{port}"],
    # The reloader's child imports the module again: the same warning there.
    "flask run --reload": ["{bin}/flask", "--app", "chat", "run", "--reload", "--port", "{port}"],
    "python -m syncaerys": ["{python}", "-m", "syncaerys", "chat:app", "--port", "{port}", "--cpu", "none"],
    "python -m syncaerys --reload": [
        *("{python}", "-m", "syncaerys", "chat:app", "--port", "{port}", "--cpu", "none", "--reload"),
    ],
    "gunicorn": [
        *("{python}", "-m", "gunicorn", "-k", "gthread", "--threads", "4", "-b", "127.0.0.1:{port}"),
        *("--no-control-socket", "chat:app"),
    ],
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("program", sorted(COMMANDS))
def test_an_unguarded_run_leaves_the_serving_to_the_importing_program(program: str, tmp_path: Path) -> None:
    own_port, port = free_port(), free_port()
    (tmp_path / "chat.py").write_text(UNGUARDED.format(own_port=own_port), encoding="utf-8")
    command = [part.format(bin=BIN, python=sys.executable, port=port) for part in COMMANDS[program]]
    log_path = tmp_path / "server.log"
    with serving(command, tmp_path, port, log_path):
        with connect(f"ws://127.0.0.1:{port}/echo", open_timeout=PROMPTLY, close_timeout=PROMPTLY) as ws:
            ws.send("hello")
            assert ws.recv(timeout=PROMPTLY) == "hello"
        assert not accepts(own_port), "run() took the process over"
    output = log_path.read_text()
    importer = program.removesuffix(" --reload")
    assert f"syncaerys.run() was called while {importer} imports the module chat" in output, output
    assert 'if __name__ == "__main__":' in output


FAREWELL = """
import flask
import syncaerys
import syncaerys.flask

class Chat(syncaerys.Websocket):
    def on_start(self, endpoint):
        self.endpoint = endpoint

    def on_open(self, client_id, data):
        self.endpoint.send("welcome", client_id)

    def on_stop(self):
        self.endpoint.broadcast("bye")

app = flask.Flask(__name__)
syncaerys.flask.Websockets(app).route("/chat", Chat())
"""


@pytest.mark.timeout(90)
def test_ctrl_c_on_flask_run_runs_on_stop_and_closes_the_clients_with_1001(tmp_path: Path) -> None:
    # Ctrl-C dropped the clients without a close frame, and on_stop never ran.
    from websockets.exceptions import ConnectionClosed

    (tmp_path / "chat.py").write_text(FAREWELL, encoding="utf-8")
    port = free_port()
    log_path = tmp_path / "flask.log"
    command = [str(BIN / "flask"), "--app", "chat", "run", "--port", str(port)]
    with serving(command, tmp_path, port, log_path) as process:
        with connect(f"ws://127.0.0.1:{port}/chat", open_timeout=PROMPTLY, close_timeout=PROMPTLY) as ws:
            assert ws.recv(timeout=PROMPTLY) == "welcome"
            process.send_signal(signal.SIGINT)  # Ctrl-C
            assert ws.recv(timeout=STARTUP) == "bye"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=STARTUP)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, log_path.read_text()
        assert process.wait(STARTUP) == 0, log_path.read_text()
    assert "Traceback" not in log_path.read_text()
