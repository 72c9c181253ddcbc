"""examples/cluster/: the rooms chat on two processes sharing one Redis, and the Publisher script."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from tests.cluster.helpers import RedisServer
from tests.test_run import STARTUP
from tests.utils import PROMPTLY
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "examples" / "cluster" / "rooms_chat.py"
ANNOUNCE = ROOT / "examples" / "cluster" / "announce.py"


@pytest.fixture
def two_chat_servers(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[int]]:
    ports = [free_port(), free_port()]
    processes = []
    try:
        for port in ports:
            log = (tmp_path / f"chat-{port}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(CHAT), "--port", str(port), "--redis", redis_server.url],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for port, process in zip(ports, processes, strict=True):
            wait_until(lambda p=port, proc=process: proc.poll() is not None or accepts(p), timeout=STARTUP)
            assert process.poll() is None, (tmp_path / f"chat-{port}.log").read_text()
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def join(port: int, name: str, room: str) -> Iterator[ClientConnection]:
    with connect(f"ws://127.0.0.1:{port}/chat?name={name}&room={room}", open_timeout=PROMPTLY) as client:
        assert client.recv(timeout=PROMPTLY) == f"* {name} joined {room}"
        yield client


def test_rooms_chat_spans_two_processes_and_announce_reaches_both(
    two_chat_servers: list[int], redis_server: RedisServer
) -> None:
    first, second = two_chat_servers
    with join(first, "ann", "lobby") as ann, join(second, "bob", "lobby") as bob, join(second, "cy", "attic") as cy:
        assert ann.recv(timeout=PROMPTLY) == "* bob joined lobby"
        ann.send("hello")
        assert bob.recv(timeout=PROMPTLY) == "[lobby] ann: hello"
        assert ann.recv(timeout=PROMPTLY) == "[lobby] ann: hello"
        # cy is in another room: the next thing cy hears is the announcement to everyone.
        done = subprocess.run(
            [sys.executable, str(ANNOUNCE), "--redis", redis_server.url, "lunch"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=STARTUP,
        )
        assert done.returncode == 0, done.stderr
        assert "published to 2 server process(es)" in done.stdout
        for client in (ann, bob, cy):
            assert client.recv(timeout=PROMPTLY) == "* announcement: lunch"
        bob.send("/who")
        who = bob.recv(timeout=PROMPTLY)
        assert isinstance(who, str) and who.startswith("* lobby: 2 member(s)")
