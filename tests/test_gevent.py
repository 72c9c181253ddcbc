"""syncaerys gateways hosted by gevent's WSGIServer, monkey-patched (a greenlet per client).

Each server is a subprocess (monkey-patching must come before every other
import): ``examples/gevent_app.py``, or ``tests/gevent_host.py`` for what the
example does not show.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("gevent")

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from tests.hostile.test_early_frames import upgrade_with_frames
from tests.test_run import STARTUP
from tests.utils import PROMPTLY
from tests.utils import accepts
from tests.utils import client_frame
from tests.utils import free_port
from tests.utils import http_request
from tests.utils import wait_until

PROJECT = Path(__file__).resolve().parents[1]
HOST = PROJECT / "tests" / "gevent_host.py"
OP_TEXT = 0x1


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def serving(tmp_path: Path, *command: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Start ``command`` with a free port appended as ``PORT`` (and ``env`` added); kill it on the way out."""
    port = free_port()
    log_path = tmp_path / "server.log"
    arguments = [str(port) if part == "PORT" else part for part in command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, *arguments],
            cwd=PROJECT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    served = Served(process, port, log_path)
    try:
        wait_until(lambda: process.poll() is not None or accepts(port), timeout=STARTUP)
        assert process.poll() is None, served.log()
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(PROMPTLY)


def refused_upgrade(port: int) -> tuple[int, bytes]:
    """Status and body of the answer to an upgrade request (read by its Content-Length: gevent keeps the connection)."""
    request = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"EOF in the response head: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, f"EOF in the response body: {body!r}"
            body += chunk
    return int(lines[0].split(" ", 2)[1]), body


def assert_farewell_then_1001(*clients: ClientConnection) -> None:
    """Each client hears on_stop's farewell, then the close frame with 1001."""
    for client in clients:
        assert client.recv(timeout=4 * PROMPTLY) == "server stopping, bye"
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=4 * PROMPTLY)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


def assert_early_frame_answered(port: int, path: str, answer: bytes) -> None:
    """A text frame sent with the upgrade request, in one segment, is answered with ``answer``."""
    client = upgrade_with_frames(port, path, client_frame(OP_TEXT, b"early bird"))
    try:
        assert client.status == 101, client.head
        assert client.recv_frame() == (OP_TEXT, True, answer)
    finally:
        client.sock.close()


def test_the_example_answers_broadcasts_and_stops_with_1001(tmp_path: Path) -> None:
    with serving(tmp_path, "examples/gevent_app.py", "--port", "PORT") as served:
        url = f"ws://127.0.0.1:{served.port}/"
        with connect(url, open_timeout=STARTUP) as first, connect(url, open_timeout=STARTUP) as second:
            first.send("order 7")
            assert first.recv(timeout=PROMPTLY) == "looked up order 7"
            second.send("/all hello")
            for client in (first, second):
                line = client.recv(timeout=PROMPTLY)
                assert isinstance(line, str) and line.endswith(": hello")
            served.process.send_signal(signal.SIGTERM)
            assert_farewell_then_1001(first, second)
        assert served.process.wait(4 * PROMPTLY) == 0
    log = served.log()
    assert "Traceback" not in log and " ERROR " not in log, log


def test_handlers_of_different_clients_block_at_the_same_time(tmp_path: Path) -> None:
    # Ten handlers wait on one barrier: it only opens if all ten are blocked in on_data at once.
    clients = 10
    with serving(tmp_path, str(HOST), "PORT", "--parties", str(clients)) as served:
        url = f"ws://127.0.0.1:{served.port}/"
        with contextlib.ExitStack() as stack:
            connections = [stack.enter_context(connect(url, open_timeout=STARTUP)) for _ in range(clients)]
            for connection in connections:
                connection.send("together")
            assert [c.recv(timeout=6 * PROMPTLY) for c in connections] == ["together"] * clients
            # And the clients are still served one message at a time, in order.
            connections[0].send("after")
            assert connections[0].recv(timeout=PROMPTLY) == "echo: after"
    assert "Traceback" not in served.log(), served.log()


HUB_BLOCKED = re.compile(r"WARNING .*on_data blocked gevent's event loop for (at least )?(?P<seconds>[0-9.]+) s")


def test_a_handler_blocking_inside_c_is_named_with_how_long_the_hub_was_blocked(tmp_path: Path) -> None:
    with serving(tmp_path, str(HOST), "PORT") as served:
        url = f"ws://127.0.0.1:{served.port}/"
        with connect(url, open_timeout=STARTUP) as client:
            client.send("cblock 0.6")
            assert client.recv(timeout=4 * PROMPTLY) == "cblocked"
            # Answered after the first callback returned (and logged) on the client's greenlet.
            client.send("after")
            assert client.recv(timeout=PROMPTLY) == "echo: after"
    warnings = HUB_BLOCKED.findall(served.log())
    assert len(warnings) == 1, served.log()  # one line per blocked call, not one per monitor check
    seconds = float(HUB_BLOCKED.search(served.log())["seconds"])  # type: ignore[index]
    assert 0.5 <= seconds < 5, served.log()
    assert "threaded host" in served.log()
    # gevent's own report (every greenlet's stack) is replaced by the line above.
    assert "appears to be blocked" not in served.log()


def test_a_call_that_also_let_the_hub_run_is_reported_with_a_lower_bound(tmp_path: Path) -> None:
    with serving(tmp_path, str(HOST), "PORT") as served:
        url = f"ws://127.0.0.1:{served.port}/"
        with connect(url, open_timeout=STARTUP) as client:
            client.send("mixed 0.6")
            assert client.recv(timeout=4 * PROMPTLY) == "mixed"
            client.send("after")
            assert client.recv(timeout=PROMPTLY) == "echo: after"
    match = HUB_BLOCKED.search(served.log())
    assert match is not None and match[1] == "at least ", served.log()
    # gevent's monitor checks every 0.1 s (its thread may miss some on a loaded machine): never more
    # than the 0.6 s spent inside C.
    assert 0.1 <= float(match["seconds"]) <= 0.7, served.log()
    assert "Together.on_data" in served.log()


def test_a_cooperative_wait_is_not_reported(tmp_path: Path) -> None:
    with serving(tmp_path, str(HOST), "PORT") as served:
        url = f"ws://127.0.0.1:{served.port}/"
        with connect(url, open_timeout=STARTUP) as client:
            client.send("gsleep 0.6")
            assert client.recv(timeout=4 * PROMPTLY) == "gslept"
            client.send("cblock 0.05")  # under gevent's 0.1 s threshold
            assert client.recv(timeout=PROMPTLY) == "cblocked"
            client.send("after")
            assert client.recv(timeout=PROMPTLY) == "echo: after"
    assert "blocked gevent's event loop" not in served.log(), served.log()


def test_gevents_monitor_configured_off_in_the_environment_is_left_off(tmp_path: Path) -> None:
    with serving(tmp_path, str(HOST), "PORT", env={"GEVENT_MONITOR_THREAD_ENABLE": "false"}) as served:
        url = f"ws://127.0.0.1:{served.port}/"
        with connect(url, open_timeout=STARTUP) as client:
            client.send("cblock 0.6")
            assert client.recv(timeout=4 * PROMPTLY) == "cblocked"
            client.send("after")
            assert client.recv(timeout=PROMPTLY) == "echo: after"
    assert "blocked gevent's event loop" not in served.log(), served.log()


def test_a_message_larger_than_the_socket_takes_arrives_whole(tmp_path: Path) -> None:
    size = 8_000_000
    with serving(tmp_path, str(HOST), "PORT") as served:
        url = f"ws://127.0.0.1:{served.port}/"
        with connect(url, open_timeout=STARTUP, max_size=None) as client, connect(url) as other:
            client.send(f"big {size}")
            # While the big one is on its way, another client is answered.
            other.send("meanwhile")
            assert other.recv(timeout=PROMPTLY) == "echo: meanwhile"
            assert client.recv(timeout=6 * PROMPTLY) == "x" * size
            client.send("next")
            assert client.recv(timeout=PROMPTLY) == "echo: next"
    assert "Traceback" not in served.log(), served.log()


def test_frames_sent_with_the_upgrade_request_are_not_lost(tmp_path: Path) -> None:
    with serving(tmp_path, str(HOST), "PORT") as served:
        assert_early_frame_answered(served.port, "/", b"echo: early bird")


def test_without_monkey_patching_the_upgrade_is_refused_with_500_and_the_fix(tmp_path: Path) -> None:
    with serving(tmp_path, str(HOST), "PORT", "--no-patch") as served:
        status, body = refused_upgrade(served.port)
        assert status == 500, body
        assert b"cannot upgrade to WebSocket" in body
        wait_until(lambda: "not monkey-patched" in served.log(), timeout=PROMPTLY)
        log = served.log()
        assert "socket, threading and select are not monkey-patched" in log, log
        assert "gevent.monkey.patch_all()" in log, log
        # The server itself is unharmed: plain requests still get their answer.
        assert http_request(served.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 426


def test_gunicorns_gevent_worker_serves_the_flask_example_and_stops_with_1001(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    from tests.test_gunicorn import Gunicorn

    gunicorn = Gunicorn(tmp_path / "gunicorn.log", "-k", "gevent")
    gunicorn.start()
    try:
        assert_early_frame_answered(gunicorn.port, "/room/early", b"early bird")
        url = f"ws://127.0.0.1:{gunicorn.port}/room/lobby"
        with connect(url, open_timeout=STARTUP) as first, connect(url, open_timeout=STARTUP) as second:
            first.send("hello")
            assert (first.recv(timeout=PROMPTLY), second.recv(timeout=PROMPTLY)) == ("hello", "hello")
            assert gunicorn.process is not None
            gunicorn.process.send_signal(signal.SIGTERM)
            assert_farewell_then_1001(first, second)
        assert gunicorn.process.wait(4 * PROMPTLY) == 0
    finally:
        gunicorn.stop()
    log = gunicorn.log()
    assert "Using worker: gevent" in log, log
    # A tested worker: no "untested" warning, and no thread counting (greenlets are not threads).
    assert "untested" not in log and "threads" not in log, log
    gunicorn.assert_no_errors()


def test_the_gevent_extra_has_what_gunicorns_gevent_worker_imports() -> None:
    """``pip install syncaerys gevent`` then ``gunicorn -k gevent`` failed: No module named 'packaging'."""
    import ast
    import importlib.metadata
    import re

    import gunicorn.workers  # type: ignore[import-untyped]

    worker = Path(gunicorn.workers.__file__).with_name("ggevent.py")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(worker.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    distributions = importlib.metadata.packages_distributions()
    needed = {
        distribution.lower()
        for module in imported - set(sys.stdlib_module_names) - {"gunicorn"}
        for distribution in distributions.get(module, [module])
    }
    extra = {
        re.split(r"[ ;<>=\[]", requirement, maxsplit=1)[0].lower()
        for requirement in importlib.metadata.requires("syncaerys") or []
        if 'extra == "gevent"' in requirement
    }
    assert needed <= extra, f"gunicorn -k gevent needs {sorted(needed - extra)}, missing from syncaerys[gevent]"
