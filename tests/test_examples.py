"""Every example, run as a real process, exercised with a real client, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from tests.utils import PROMPTLY
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: Starting a fresh interpreter that imports werkzeug can be slow on a loaded machine.
STARTUP = 4 * PROMPTLY


@dataclass
class Example:
    """A running example process."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def connect(self, path: str, headers: dict[str, str] | None = None) -> ClientConnection:
        return connect(self.url(path), additional_headers=headers, open_timeout=PROMPTLY, close_timeout=PROMPTLY)

    def terminate(self) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STARTUP)


@contextlib.contextmanager
def example(name: str, tmp_path: Path) -> Iterator[Example]:
    """Run ``examples/<name>.py --port N`` until it accepts connections; kill it if still running at the end."""
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / f"{name}.py"), "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_until(lambda: process.poll() is not None or accepts(port), timeout=STARTUP, interval=0.05)
        except AssertionError:
            raise AssertionError(f"{name}.py did not start: {log_path.read_text()}") from None
        assert process.poll() is None, log_path.read_text()
        yield Example(process, port, log_path)
    except BaseException as error:
        if hasattr(error, "add_note"):
            error.add_note(f"{name}.py exit code: {process.poll()}; its log:\n{log_path.read_text()}")
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(PROMPTLY)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


def close_code(ws: ClientConnection) -> tuple[int, str]:
    """Wait for the server's close and return its (code, reason)."""
    with pytest.raises(ConnectionClosed):
        while True:
            ws.recv(timeout=PROMPTLY)
    assert ws.protocol.close_rcvd is not None
    return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason


def rejected_status(server: Example, path: str, headers: dict[str, str] | None = None) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as rejected:
        server.connect(path, headers)
    return rejected.value


def http_get(server: Example, path: str) -> tuple[int, str, str]:
    """GET ``path``: (status, content type, body)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=PROMPTLY) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


# -- chat.py


def test_chat(tmp_path: Path) -> None:
    with example("chat", tmp_path) as server:
        status, content_type, page = http_get(server, "/")
        assert (status, content_type) == (200, "text/html; charset=utf-8")
        for element in ('id="name"', 'id="join"', 'id="messages"', 'id="text"', 'id="send"'):
            assert element in page

        assert rejected_status(server, "/chat").response.status_code == 400
        assert rejected_status(server, "/chat?name=%20").response.status_code == 400
        assert rejected_status(server, "/chat?name=" + "x" * 21).response.status_code == 403
        assert rejected_status(server, "/chat?name=%3Cscript%3E").response.status_code == 403

        with server.connect("/chat?name=ann") as ann:
            assert ann.recv(timeout=PROMPTLY) == "* ann joined"
            with server.connect("/chat?name=bob") as bob:
                assert bob.recv(timeout=PROMPTLY) == "* bob joined"
                assert ann.recv(timeout=PROMPTLY) == "* bob joined"
                ann.send("hello, bob")
                assert ann.recv(timeout=PROMPTLY) == "ann: hello, bob"
                assert bob.recv(timeout=PROMPTLY) == "ann: hello, bob"
                bob.send("hi ann")
                assert ann.recv(timeout=PROMPTLY) == "bob: hi ann"
                assert bob.recv(timeout=PROMPTLY) == "bob: hi ann"
            # bob closed (1000): ann hears that he left.
            assert ann.recv(timeout=PROMPTLY) == "* bob left"
            with server.connect("/chat?name=cy") as cy:
                assert cy.recv(timeout=PROMPTLY) == "* cy joined"
                assert ann.recv(timeout=PROMPTLY) == "* cy joined"
                # Binary is refused: the chat is text only.
                ann.send(b"\x00")
                assert close_code(ann)[0] == 1003
                # cy was in the room before ann's close, so ann's on_close reaches cy. (A client
                # connected after ann saw her close might get it too: on_close runs once the socket
                # is closed, with no order against a later client's on_open.)
                assert cy.recv(timeout=PROMPTLY) == "* ann left"
                assert server.terminate() == 0
                assert cy.recv(timeout=PROMPTLY) == "* the server is stopping"
                assert close_code(cy) == (1001, "Server shutting down")


# -- auth.py


def test_auth(tmp_path: Path) -> None:
    with example("auth", tmp_path) as server:
        missing = rejected_status(server, "/ws").response
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="syncaerys-example"'

        assert rejected_status(server, "/ws?token=wrong").response.status_code == 403
        bad_cookie = rejected_status(server, "/ws", headers={"Cookie": "token=wrong"})
        assert bad_cookie.response.status_code == 403
        assert b"Unknown token" in bad_cookie.response.body

        with server.connect("/ws?token=alice-s3cret") as alice:
            assert alice.response is not None
            assert alice.response.status_code == 101
            assert alice.recv(timeout=PROMPTLY) == "hello alice (token from the query)"
            alice.send("hi")
            assert alice.recv(timeout=PROMPTLY) == "alice: hi"

        with server.connect("/ws", headers={"Cookie": "token=bob-s3cret"}) as bob:
            assert bob.recv(timeout=PROMPTLY) == "hello bob (token from the cookie)"
            bob.send("yo")
            assert bob.recv(timeout=PROMPTLY) == "bob: yo"

        assert server.terminate() == 0


# -- upload.py


def test_upload_streams_a_large_fragmented_message(tmp_path: Path) -> None:
    size = 5 * 1024 * 1024
    fragment = 64 * 1024
    data = random.Random(6455).randbytes(size)
    with example("upload", tmp_path) as server, server.connect("/") as ws:
        ws.send(data[i : i + fragment] for i in range(0, size, fragment))
        reply = json.loads(ws.recv(timeout=4 * PROMPTLY))
        assert reply["bytes"] == size
        assert reply["sha256"] == hashlib.sha256(data).hexdigest()
        # Read frame by frame: at least one chunk per fragment sent.
        assert reply["chunks"] >= size // fragment

        ws.send(b"small")
        assert json.loads(ws.recv(timeout=PROMPTLY)) == {
            "bytes": 5,
            "chunks": 1,
            "sha256": hashlib.sha256(b"small").hexdigest(),
        }
        ws.send("not binary")
        assert "error" in json.loads(ws.recv(timeout=PROMPTLY))

        # One frame over max_frame_size (1 MiB) is refused with 1009, decided from
        # its header: the server may close before the client has written it all.
        with contextlib.suppress(ConnectionClosed):
            ws.send(b"\x00" * (1024 * 1024 + 1))
        assert close_code(ws)[0] == 1009
        assert server.terminate() == 0


# -- aerys_example.py and echo.py


def test_aerys_example(tmp_path: Path) -> None:
    with example("aerys_example", tmp_path) as server:
        status, content_type, page = http_get(server, "/")
        assert status == 200
        assert content_type.startswith("text/html")
        assert "/websocket" in page

        with server.connect("/websocket") as ws:
            assert ws.recv(timeout=PROMPTLY) == "Heyho!"
            ws.send("echo me")
            assert ws.recv(timeout=PROMPTLY) == "echo me"
            assert server.terminate() == 0
            # on_stop's broadcast, then the 1001 close.
            assert ws.recv(timeout=PROMPTLY) == "Byebye!"
            assert close_code(ws) == (1001, "Server shutting down")


def test_echo(tmp_path: Path) -> None:
    with example("echo", tmp_path) as server:
        with server.connect("/") as first, server.connect("/") as second:
            first_welcome = first.recv(timeout=PROMPTLY)
            assert isinstance(first_welcome, str)
            assert first_welcome.startswith("welcome, client ")
            first_id = first_welcome.rsplit(" ", 1)[1]
            assert str(second.recv(timeout=PROMPTLY)).startswith("welcome, client ")

            first.send("just me")
            assert first.recv(timeout=PROMPTLY) == "just me"
            first.send(b"\x01\x02")
            assert first.recv(timeout=PROMPTLY) == b"\x01\x02"
            first.send("/all hello everyone")
            assert first.recv(timeout=PROMPTLY) == f"{first_id}: hello everyone"
            assert second.recv(timeout=PROMPTLY) == f"{first_id}: hello everyone"

            assert server.terminate() == 0
            for ws in (first, second):
                assert ws.recv(timeout=PROMPTLY) == "server stopping, bye"
                assert close_code(ws) == (1001, "Server shutting down")
