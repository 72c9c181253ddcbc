"""The graceful stop of a real process: examples/echo.py under SIGTERM and SIGINT (docs/reference/serving.md)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import http_request
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "examples" / "echo.py"
#: Starting a fresh interpreter that imports werkzeug can be slow on a loaded machine.
STARTUP = 4 * PROMPTLY


@contextlib.contextmanager
def echo_server(
    tmp_path: Path, name: str = "echo", script: Path = ECHO
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Run ``script --port N`` (examples/echo.py) on a free port until it accepts connections.

    Its output goes to ``name``.log in ``tmp_path``.
    """
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(script), "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_until(lambda: process.poll() is not None or accepts(port), timeout=STARTUP, interval=0.05)
        except AssertionError:
            raise AssertionError(f"{script.name} did not start: {log_path.read_text()}") from None
        assert process.poll() is None, log_path.read_text()
        yield process, port
    except BaseException as error:
        # Say what the server did: its exit code and its log.
        if hasattr(error, "add_note"):
            error.add_note(f"{script.name} exit code: {process.poll()}; its log:\n{log_path.read_text()}")
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(PROMPTLY)


def accept_loop_done(port: int) -> None:
    """Return once the server's accept loop has finished with every earlier connection.

    A plain HTTP request on a new connection is answered (426) only after the
    single accept loop accepted it, so it is done with the connections before.
    The signal tests need this: a signal that lands while the loop still holds
    a connection is test_client_that_just_connected_gets_the_graceful_close's
    subject, not theirs.
    """
    status, _, _ = http_request(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert status == 426


@contextlib.contextmanager
def open_client(port: int) -> Iterator[ClientConnection]:
    """A websockets client that has received echo.py's welcome message."""
    with connect(f"ws://127.0.0.1:{port}/", open_timeout=PROMPTLY, ping_interval=None) as ws:
        welcome = ws.recv(timeout=PROMPTLY)
        assert isinstance(welcome, str)
        assert welcome.startswith("welcome, client ")
        yield ws


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_gracefully(tmp_path: Path, signum: signal.Signals) -> None:
    with echo_server(tmp_path) as (process, port):
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(open_client(port)) for _ in range(2)]
            for number, ws in enumerate(clients):
                ws.send(f"message {number}")
                assert ws.recv(timeout=PROMPTLY) == f"message {number}"
            accept_loop_done(port)

            process.send_signal(signum)

            for ws in clients:
                # on_stop's broadcast comes first, then the 1001 close.
                assert ws.recv(timeout=PROMPTLY) == "server stopping, bye"
                with pytest.raises(ConnectionClosed):
                    ws.recv(timeout=PROMPTLY)
                assert ws.protocol.close_rcvd is not None
                assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (1001, "Server shutting down")
        assert process.wait(timeout=PROMPTLY) == 0
    log = (tmp_path / "echo.log").read_text()
    assert "Traceback" not in log, log


@contextlib.contextmanager
def settled_raw_client(port: int) -> Iterator[RawClient]:
    """A raw client (it never answers the server's close) past its welcome and one echo."""
    with RawClient(port) as client:
        assert client.status == 101
        opcode, _, payload = client.recv_frame()
        assert opcode == 0x1
        assert payload.startswith(b"welcome, client ")
        client.send_frame(0x1, b"echo me")
        assert client.recv_frame() == (0x1, True, b"echo me")
        accept_loop_done(port)
        yield client


def test_new_connections_are_refused_once_stopping(tmp_path: Path) -> None:
    with echo_server(tmp_path) as (process, port):
        # A raw client that never answers the close keeps the server in STOPPING
        # for close_period (3 s): long enough to try connecting meanwhile.
        with settled_raw_client(port) as client:
            process.send_signal(signal.SIGTERM)

            assert client.recv_frame() == (0x1, True, b"server stopping, bye")
            assert client.recv_close(skip_data=False) == (1001, "Server shutting down")
            # on_stop ran, so the listener is already closed.
            with pytest.raises(OSError):
                connect(f"ws://127.0.0.1:{port}/", open_timeout=PROMPTLY)
            # The server closes TCP itself after close_period.
            assert client.recv_until_eof() == b""
        assert process.wait(timeout=PROMPTLY) == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY).close()


#: A server whose graceful stop waits a minute for closing handshakes.
SLOW_CLOSE_SERVER = """
import sys

import syncaerys

port = int(sys.argv[sys.argv.index("--port") + 1])
syncaerys.run(syncaerys.websocket(syncaerys.Websocket(), close_period=60.0), host="127.0.0.1", port=port)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_second_signal_stops_at_once(tmp_path: Path, signum: signal.Signals) -> None:
    script = tmp_path / "slow_close_server.py"
    script.write_text(SLOW_CLOSE_SERVER)
    with echo_server(tmp_path, "slow-close", script) as (process, port), RawClient(port) as client:
        assert client.status == 101
        accept_loop_done(port)
        process.send_signal(signum)
        assert client.recv_close(skip_data=False) == (1001, "Server shutting down")
        # We never answer the close: the graceful stop would now wait close_period (60 s).
        process.send_signal(signum)
        try:
            returncode = process.wait(timeout=2 * PROMPTLY)
        except subprocess.TimeoutExpired:
            raise AssertionError("the second signal did not stop the server at once") from None
        assert returncode == 0
        assert client.recv_until_eof() == b""


#: Each attempt is a fresh process; the window is short, so try a few times.
ATTEMPTS = 3


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_client_that_just_connected_gets_the_graceful_close(tmp_path: Path, signum: signal.Signals) -> None:
    """Signal the moment the 101 arrives: that client is open, so it gets on_stop's message and 1001.

    The server may still be setting this connection up (registering it, calling
    on_open, finishing its accept loop) when the signal lands; the stop must
    still treat it as an open client.
    """
    for attempt in range(ATTEMPTS):
        with echo_server(tmp_path, f"echo-{attempt}") as (process, port), RawClient(port) as client:
            assert client.status == 101
            process.send_signal(signum)
            texts = []
            while True:
                opcode, _, payload = client.recv_frame()
                if opcode == 0x8:
                    break
                assert opcode == 0x1, (opcode, payload)
                texts.append(payload)
            assert (int.from_bytes(payload[:2], "big"), payload[2:].decode()) == (1001, "Server shutting down")
            # The 101 was on the wire before the signal: the client was open when
            # on_stop broadcast, so the broadcast reaches it, before the close.
            # (on_open may run while the stop is under way: its welcome may come
            # before or after the goodbye, or not at all if the close came first.)
            assert texts.count(b"server stopping, bye") == 1, f"attempt {attempt}: {texts}"
            others = [text for text in texts if text != b"server stopping, bye"]
            assert len(others) <= 1, texts
            assert all(text.startswith(b"welcome, client ") for text in others), texts
            client.send_frame(0x8, payload)
            assert client.recv_until_eof() == b""
            assert process.wait(timeout=PROMPTLY) == 0
