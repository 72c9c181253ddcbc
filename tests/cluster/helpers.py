"""The cluster tests' helpers: a private redis-server, server processes (node.py) and their clients.

Every wait here is bounded; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parents[2]
NODE = Path(__file__).resolve().parent / "node.py"
#: A fresh interpreter importing werkzeug and redis-py can be slow on a loaded machine.
STARTUP = 4 * PROMPTLY
#: The channel every node of a test's cluster uses unless told otherwise.
CHANNEL = "cluster-tests"


def redis_server_path() -> str:
    """The redis-server executable; skips the test without one (fails it if SYNCAERYS_REQUIRE_REDIS=1, as in CI)."""
    path = shutil.which("redis-server")
    problem = None
    if path is None:
        problem = "redis-server is not on PATH (install Debian's redis-server package)"
    else:
        try:
            import redis  # noqa: F401
        except ImportError:
            problem = "redis-py is not installed (pip install -e '.[test]')"
    if problem is not None:
        if os.environ.get("SYNCAERYS_REQUIRE_REDIS") == "1":
            pytest.fail(f"the cluster tests need a real Redis (SYNCAERYS_REQUIRE_REDIS=1): {problem}")
        pytest.skip(f"the cluster tests need a real Redis: {problem}")
    assert path is not None
    return path


class RedisServer:
    """A private redis-server on 127.0.0.1 that a test can stop and restart on the same port."""

    def __init__(self, executable: str, directory: Path) -> None:
        self.executable = executable
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = itertools.count(1)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        """A redis-py client of this server (the caller closes it)."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=PROMPTLY, socket_connect_timeout=PROMPTLY)

    def start(self) -> None:
        """Start on a free port (the first time), then on the same port; return once it answers PING."""
        if self.port:
            self._launch()
            return
        for _ in range(5):  # a free port may be taken between free_port() and the bind
            self.port = free_port()
            with contextlib.suppress(RuntimeError):
                self._launch()
                return
        raise RuntimeError("could not start redis-server on a free port")

    def _launch(self) -> None:
        log_path = self.directory / f"redis-{next(self._starts)}.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.directory),
                ],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process
        try:
            wait_until(lambda: process.poll() is not None or self._answers(), timeout=STARTUP, interval=0.02)
        except AssertionError:
            self.stop()
            raise RuntimeError(f"redis-server did not answer PING: {log_path.read_text()}") from None
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}: {log_path.read_text()}")

    def _answers(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it (SIGTERM, then SIGKILL if it lingers) and wait until it is gone."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(PROMPTLY)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(PROMPTLY)

    def restart(self) -> None:
        """Stop it, then start an empty one on the same port (it had no persistence)."""
        self.stop()
        self.start()


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[RedisServer]:
    """A redis-server of its own in ``directory`` for one test, always killed at the end."""
    server = RedisServer(redis_server_path(), directory)
    server.start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


# -- server processes


class NodeClient:
    """A WebSocket client of a node that sends it commands and keeps what else arrives.

    Replies to commands are matched by their tag; everything else (broadcasts,
    sends, events) waits in ``inbox`` for :meth:`next_message` and :meth:`expect`.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(f"ws://{host}:{port}/", open_timeout=PROMPTLY, close_timeout=PROMPTLY)
        )
        self.inbox: list[str | bytes] = []
        self._tags = itertools.count(1)
        self.id: int = self.call("whoami")

    def _receive(self, deadline: float) -> str | bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return self.ws.recv(timeout=remaining)

    def request(self, op: str, timeout: float = PROMPTLY, **fields: Any) -> dict[str, Any]:
        """Send a command; its reply (``result``, or ``error`` and maybe ``local_result``)."""
        tag = next(self._tags)
        self.ws.send(json.dumps({"tag": tag, "op": op, **fields}))
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._receive(deadline)
            except TimeoutError:
                raise AssertionError(f"no reply to {op} {fields} in {timeout}s; inbox: {self.inbox!r}") from None
            reply = _reply(message)
            if reply is not None and reply.get("re") == tag:
                return reply
            self.inbox.append(message)

    def call(self, op: str, timeout: float = PROMPTLY, **fields: Any) -> Any:
        """Send a command that must succeed; its result."""
        reply = self.request(op, timeout, **fields)
        assert "error" not in reply, f"{op} {fields} failed: {reply['error']}"
        return reply["result"]

    def next_message(self, timeout: float = PROMPTLY) -> str | bytes:
        """The next message that is not a reply."""
        if self.inbox:
            return self.inbox.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._receive(deadline)
            except TimeoutError:
                raise AssertionError(f"no message in {timeout}s") from None
            if _reply(message) is None:
                return message

    def expect(self, expected: str | bytes, timeout: float = PROMPTLY) -> None:
        """Wait for the message ``expected`` (others may come first and are kept)."""
        skipped: list[str | bytes] = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    message = self.next_message(max(0.0, deadline - time.monotonic()))
                except AssertionError:
                    raise AssertionError(f"{expected!r} did not arrive in {timeout}s; got {skipped!r}") from None
                if message == expected:
                    return
                skipped.append(message)
        finally:
            self.inbox[:0] = skipped

    def expect_event(self, name: str, timeout: float = PROMPTLY) -> None:
        """Wait for ``{"event": name}`` from the node's backplane hooks."""
        self.expect(json.dumps({"event": name}), timeout)

    def expect_close(self, timeout: float = PROMPTLY) -> tuple[int | None, str | None]:
        """Read until the server closes (keeping the messages before); the (code, reason) it sent."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._receive(deadline)
                if _reply(message) is None:
                    self.inbox.append(message)
            except TimeoutError:
                raise AssertionError(f"not closed in {timeout}s") from None
            except ConnectionClosed as closed:
                frame = closed.rcvd
                return (None, None) if frame is None else (frame.code, frame.reason)

    def close(self) -> None:
        """The closing handshake (teardown only drops the socket)."""
        self._stack.close()


def _reply(message: str | bytes) -> dict[str, Any] | None:
    if not isinstance(message, str) or not message.startswith('{"re"'):
        return None
    value = json.loads(message)
    return value if isinstance(value, dict) else None


class Node:
    """A server process of the test cluster (``tests/cluster/node.py``)."""

    def __init__(self, process: subprocess.Popen[str], log_path: Path, host: str = "127.0.0.1") -> None:
        self.process = process
        self.log_path = log_path
        #: Where its websockets are reached from the test.
        self.host = host
        self.port = 0
        self.clients: list[NodeClient] = []

    def wait_listening(self) -> None:
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def read() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        try:
            line = lines.get(timeout=STARTUP)
        except queue.Empty:
            raise AssertionError(f"node did not start in {STARTUP}s: {self.log()}") from None
        assert line.startswith("PORT "), f"node said {line!r}: {self.log()}"
        self.port = int(line.split()[1])

    def connect(self) -> NodeClient:
        """A new client of this node (closed at teardown)."""
        client = NodeClient(self.port, self.host)
        self.clients.append(client)
        return client

    def kill(self) -> None:
        """SIGKILL: no goodbye to Redis; its clients vanish when its liveness key expires."""
        self.process.kill()
        self.process.wait(PROMPTLY)

    def terminate(self) -> None:
        """SIGTERM: a graceful stop that removes the node from Redis."""
        self.process.terminate()
        self.process.wait(PROMPTLY)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Teardown: drop the clients' sockets, SIGKILL the process, wait for it."""
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.ws.close_socket()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(PROMPTLY)
        if self.process.stdout is not None:
            self.process.stdout.close()


#: What the ``start_nodes`` fixture is: ``start_nodes(count, **launch_node options)``.
NodeFactory = Callable[..., list[Node]]


def launch_node(
    redis_url: str,
    log_path: Path,
    *,
    channel: str = CHANNEL,
    node_ttl: float = 10.0,
    request_timeout: float = 1.0,
    max_reconnect_delay: float = 0.2,
    prefix: tuple[str, ...] = (),
    host: str = "127.0.0.1",
    reach: str | None = None,
) -> Node:
    """Start ``node.py`` (without waiting: see :meth:`Node.wait_listening`); its stderr goes to ``log_path``.

    ``prefix`` runs it under another command (``ip netns exec NS``); it serves
    on ``host`` and the test reaches it at ``reach`` (default ``host``).
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                str(NODE),
                redis_url,
                "--channel",
                channel,
                "--node-ttl",
                str(node_ttl),
                "--request-timeout",
                str(request_timeout * SECOND),
                "--max-reconnect-delay",
                str(max_reconnect_delay),
                "--host",
                host,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    return Node(process, log_path, reach or host)


def wait_for_membership(*clients: NodeClient) -> None:
    """Wait until the node of every client lists all of them (membership reaches Redis asynchronously)."""
    everyone = sorted(c.id for c in clients)
    for client in clients:
        wait_until(lambda client=client: client.call("clients") == everyone)  # type: ignore[misc]
