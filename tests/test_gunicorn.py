"""The Flask example under a real gunicorn process (gthread worker) with syncaerys's hooks.

gunicorn runs ``examples.flask_app:app`` with ``examples/gunicorn.conf.py``
(its hooks from :mod:`syncaerys.gunicorn`), on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("gunicorn")

from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import syncaerys
from syncaerys import gunicorn as hooks
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import wait_until

PROJECT = Path(__file__).resolve().parents[1]
CONFIG = PROJECT / "examples" / "gunicorn.conf.py"
#: How long gunicorn may take to boot on a busy machine.
BOOT_TIMEOUT = 6 * PROMPTLY
#: How long gunicorn may take to close its clients and exit once signalled (a
#: loaded machine is slow to tear a Python process down), well below the
#: graceful timeout the stop tests give it.
STOP_BOUND = 4 * PROMPTLY


class Gunicorn:
    """A gunicorn master process serving the Flask example; its log goes to a file."""

    def __init__(
        self, log_path: Path, *options: str, app: str = "examples.flask_app:app", config: Path | None = CONFIG
    ) -> None:
        self.log_path = log_path
        self.options = options
        self.app = app
        self.config = config
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # The free port is found by binding port 0; another process may take it
        # before gunicorn binds it, so a failed boot is retried on a new port.
        for _ in range(3):
            self.port = _free_port()
            command = [
                sys.executable,
                "-m",
                "gunicorn",
                *(["-c", str(self.config)] if self.config is not None else []),
                "-k",
                "gthread",
                "--threads",
                "8",
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{self.port}",
                "--no-control-socket",  # gunicorn 27 would share ~/.gunicorn/gunicorn.ctl between runs
                "--log-level",
                "info",
                *self.options,
                self.app,
            ]
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(command, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
            if self._wait_ready():
                return
            self.stop()
        raise AssertionError(f"gunicorn did not start:\n{self.log()}")

    def _wait_ready(self) -> bool:
        # The master listens before its worker has booted: ready means a page was served.
        assert self.process is not None
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                status, _, _ = get(self.port, "/")
                if status == 200:
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> int | None:
        """SIGTERM, then wait (SIGKILL past the bound); the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(BOOT_TIMEOUT)
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_no_errors(self) -> None:
        log = self.log()
        assert "[ERROR]" not in log and "Traceback" not in log, log


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """A GET on a fresh connection; the body is read by Content-Length (gunicorn keeps connections alive)."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return read_response(sock, b"")


def read_response(sock: socket.socket, data: bytes) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("EOF in the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("EOF in the response body")
        body += chunk
    return int(lines[0].split(" ", 2)[1]), headers, body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    gunicorn = Gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")
    gunicorn.start()
    try:
        yield gunicorn
    finally:
        gunicorn.stop()
    # Everything the worker logged is in the file now, including what came after the tests' last reads.
    gunicorn.assert_no_errors()


def test_page_and_echo_through_gunicorn(server: Gunicorn) -> None:
    status, _, body = get(server.port, "/")
    assert status == 200 and b"syncaerys chat" in body
    with connect(f"ws://127.0.0.1:{server.port}/room/lobby") as ws:
        ws.send("hello")
        assert ws.recv(timeout=PROMPTLY) == "hello"
        ws.send(b"\x01\x02")
        assert ws.recv(timeout=PROMPTLY) == b"\x01\x02"
    server.assert_no_errors()


def test_messages_stay_in_their_room(server: Gunicorn) -> None:
    url = f"ws://127.0.0.1:{server.port}/room"
    with contextlib.ExitStack() as stack:
        # A client joins its room in on_open, which runs after the 101: each
        # one's echo shows it has joined before the next one connects.
        red = stack.enter_context(connect(f"{url}/red"))
        red.send("red here")
        assert red.recv(timeout=PROMPTLY) == "red here"
        red2 = stack.enter_context(connect(f"{url}/red"))
        red2.send("red2 here")
        assert red2.recv(timeout=PROMPTLY) == "red2 here"
        assert red.recv(timeout=PROMPTLY) == "red2 here"
        blue = stack.enter_context(connect(f"{url}/blue"))
        blue.send("blue only")
        assert blue.recv(timeout=PROMPTLY) == "blue only"
        red.send("to red")
        assert red.recv(timeout=PROMPTLY) == "to red"
        assert red2.recv(timeout=PROMPTLY) == "to red"
        blue.send("again")
        assert blue.recv(timeout=PROMPTLY) == "again"  # "to red" never reached blue
        red2.send("last")
        assert red.recv(timeout=PROMPTLY) == "last"  # "blue only" and "again" never reached red


def test_nothing_follows_the_close_frame(server: Gunicorn) -> None:
    with RawClient(server.port, "/room/lobby") as client:
        assert client.status == 101
        client.send_frame(0x1, b"hi")
        assert client.recv_frame() == (0x1, True, b"hi")
        client.send_frame(0x8, (1000).to_bytes(2, "big") + b"bye")
        assert client.recv_frame() == (0x8, True, (1000).to_bytes(2, "big") + b"bye")
        assert client.recv_until_eof() == b""
    with RawClient(server.port, "/room/lobby") as client:
        client.send_frame(0x1, b"\xc3\x28")  # invalid UTF-8
        assert client.recv_close()[0] == 1007
        assert client.recv_until_eof() == b""
    server.assert_no_errors()


def test_denied_handshake_is_a_normal_response(server: Gunicorn) -> None:
    with RawClient(server.port, "/room/no%20spaces") as client:
        assert client.status == 400
        headers = dict(line.split(": ", 1) for line in client.head.split("\r\n")[1:])
        length = int(headers["Content-Length"])
        body = client.buffer
        while len(body) < length:
            body += client.sock.recv(65536)
    assert body == b"room names are 1 to 32 letters, digits, '-' or '_'\n"


def test_plain_get_on_the_websocket_route_gets_426(server: Gunicorn) -> None:
    status, headers, _ = get(server.port, "/room/lobby")
    assert status == 426
    assert headers["upgrade"] == "websocket"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_gunicorn_closes_clients_with_1001(tmp_path: Path, signum: int) -> None:
    # A graceful timeout far above STOP_BOUND: the exit must come from the hooks
    # closing the websockets, not from gunicorn giving up on them.
    gunicorn = Gunicorn(tmp_path / "gunicorn.log", "--graceful-timeout", "120")
    gunicorn.start()
    assert gunicorn.process is not None
    try:
        with connect(f"ws://127.0.0.1:{gunicorn.port}/room/a") as ws, RawClient(gunicorn.port, "/room/b") as raw:
            ws.send("ready?")
            assert ws.recv(timeout=PROMPTLY) == "ready?"
            raw.send_frame(0x1, b"ready?")
            assert raw.recv_frame() == (0x1, True, b"ready?")
            raw.sock.settimeout(STOP_BOUND)
            started = time.monotonic()
            gunicorn.process.send_signal(signum)
            assert ws.recv(timeout=STOP_BOUND) == "server stopping, bye"  # on_stop ran
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=STOP_BOUND)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "Server shutting down")
            assert raw.recv_frame() == (0x1, True, b"server stopping, bye")
            assert raw.recv_close() == (1001, "Server shutting down")
            raw.send_frame(0x8, (1001).to_bytes(2, "big"))
            assert raw.recv_until_eof() == b""
        assert gunicorn.process.wait(STOP_BOUND) == 0
        assert time.monotonic() - started < STOP_BOUND
    finally:
        gunicorn.stop()
    log = gunicorn.log()
    assert log.count("closed: 1001 'Server shutting down'") == 2, log
    gunicorn.assert_no_errors()


#: SIGTERMs sent to the worker at once, before the master's own: signals that arrive while the
#: worker's handler runs make it run again inside itself, in the main thread.
SIGNAL_BURST = 200


def test_a_burst_of_sigterms_still_closes_clients_with_1001(tmp_path: Path) -> None:
    # The worker gets SIGTERM twice on every stop (a process group's and the master's); a handler
    # that takes a lock waits for itself when the second runs inside the first (a threading.Event's
    # set did: the worker hung until gunicorn's graceful timeout killed it and its clients). Here,
    # end to end; the burst only sometimes lands inside the handler, and
    # tests/test_signal_handlers.py lands a second call at each of its lines.
    gunicorn = Gunicorn(tmp_path / "gunicorn.log", "--graceful-timeout", "120")
    gunicorn.start()
    assert gunicorn.process is not None
    try:
        booted = re.search(r"Booting worker with pid: (\d+)", gunicorn.log())
        assert booted is not None, gunicorn.log()
        with connect(f"ws://127.0.0.1:{gunicorn.port}/room/a") as ws:
            ws.send("ready?")
            assert ws.recv(timeout=PROMPTLY) == "ready?"
            started = time.monotonic()
            for _ in range(SIGNAL_BURST):
                os.kill(int(booted.group(1)), signal.SIGTERM)
            gunicorn.process.send_signal(signal.SIGTERM)
            assert ws.recv(timeout=STOP_BOUND) == "server stopping, bye"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=STOP_BOUND)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert gunicorn.process.wait(STOP_BOUND) == 0
        assert time.monotonic() - started < STOP_BOUND
    finally:
        gunicorn.stop()
    gunicorn.assert_no_errors()


def test_threads_running_short_are_reported(tmp_path: Path) -> None:
    gunicorn = Gunicorn(tmp_path / "gunicorn.log", "--threads", "2")
    gunicorn.start()
    try:
        url = f"ws://127.0.0.1:{gunicorn.port}/room"
        with connect(f"{url}/one") as first, connect(f"{url}/two") as second:
            first.send("1")
            second.send("2")
            assert (first.recv(timeout=PROMPTLY), second.recv(timeout=PROMPTLY)) == ("1", "2")
            wait_until(lambda: "websockets hold 2 of the worker's 2 threads" in gunicorn.log(), timeout=STOP_BOUND)
    finally:
        gunicorn.stop()


def test_worker_connections_above_threads_are_reported_with_several_workers(tmp_path: Path) -> None:
    gunicorn = Gunicorn(tmp_path / "gunicorn.log", "-w", "2", "--worker-connections", "100")
    gunicorn.start()
    try:
        # Each worker logs it once its gateway starts; the first is enough.
        wait_until(
            lambda: "gunicorn worker_connections 100 > --threads 8 with 2 workers" in gunicorn.log(), timeout=STOP_BOUND
        )
    finally:
        gunicorn.stop()


@pytest.mark.parametrize("with_hooks", [True, False], ids=["hooks", "no-hooks"])
def test_the_sync_worker_refuses_upgrades_naming_gthread(tmp_path: Path, with_hooks: bool) -> None:
    # --threads 1: with more, gunicorn would switch the sync worker to gthread by itself.
    config = CONFIG if with_hooks else None
    gunicorn = Gunicorn(tmp_path / "gunicorn.log", "-k", "sync", "--threads", "1", config=config)
    gunicorn.start()
    try:
        if with_hooks:
            assert "syncaerys websockets need gunicorn's gthread worker" in gunicorn.log()
            assert "not SyncWorker" in gunicorn.log()
        # It logged an ERROR and served; the first client then held the worker, the second waited for
        # gunicorn's WORKER TIMEOUT and the first got 1006. Now both are refused at once.
        for _ in range(2):
            with pytest.raises(InvalidStatus) as refused:
                connect(f"ws://127.0.0.1:{gunicorn.port}/room/lobby", open_timeout=PROMPTLY)
            assert refused.value.response.status_code == 500
        wait_until(lambda: gunicorn.log().count("gunicorn's sync worker serves one request at a time") == 2)
        assert "-k gthread" in gunicorn.log()
    finally:
        gunicorn.stop()


PRELOADED = """
import flask
import syncaerys
import syncaerys.flask

class Quiet(syncaerys.Websocket):
    pass

app = flask.Flask(__name__)
sockets = syncaerys.flask.Websockets(app)
sockets.route("/chat", Quiet())
sockets.start()  # at import: under --preload, in the master


@app.get("/")
def index():
    return "ok"
"""


def test_a_gateway_started_in_the_preload_master_is_warned_about(tmp_path: Path) -> None:
    (tmp_path / "preloaded.py").write_text(PRELOADED, encoding="utf-8")
    gunicorn = Gunicorn(tmp_path / "gunicorn.log", "--preload", "--pythonpath", str(tmp_path), app="preloaded:app")
    gunicorn.start()
    try:
        wait_until(lambda: "started in gunicorn's master" in gunicorn.log(), timeout=STOP_BOUND)
        assert "(Quiet)" in gunicorn.log()
    finally:
        gunicorn.stop()


def test_gateways_are_found_tracked_or_not() -> None:
    tracked = hooks.track(syncaerys.websocket(Recorder()))
    untracked = syncaerys.websocket(Recorder())
    found = hooks.gateways()
    assert tracked in found and untracked in found


def test_worker_exit_does_nothing_in_the_master() -> None:
    gateway = hooks.track(syncaerys.websocket(Recorder()))

    class OtherProcessWorker:
        pid = os.getpid() + 1  # gunicorn calls worker_exit in the master for a vanished worker

    hooks.worker_exit(None, OtherProcessWorker())
    assert not gateway.stopping
