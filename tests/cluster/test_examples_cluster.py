"""examples/cluster/: the rooms chat on two processes sharing one Redis, and the Publisher script."""

from __future__ import annotations

import contextlib
import os
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
            wait_until(lambda p=port, proc=process: proc.poll() is not None or accepts(p), timeout=STARTUP)  # type: ignore[misc]
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
def join(port: int, name: str, room: str, open_timeout: float = PROMPTLY) -> Iterator[ClientConnection]:
    with connect(f"ws://127.0.0.1:{port}/chat?name={name}&room={room}", open_timeout=open_timeout) as client:
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


def recv_until(client: ClientConnection, expected: str) -> None:
    """Skip other chat lines (joins) until ``expected`` arrives; bounded by PROMPTLY per line."""
    seen = []
    for _ in range(200):
        line = client.recv(timeout=PROMPTLY)
        if line == expected:
            return
        seen.append(line)
    raise AssertionError(f"{expected!r} did not arrive; got {seen[-5:]!r}")


THREADS = 8


@pytest.mark.timeout(120)
def test_rooms_chat_under_gunicorn_with_four_workers(redis_server: RedisServer, tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        master = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "examples/cluster/gunicorn.conf.py",
                "-b",
                f"127.0.0.1:{port}",
                # The example sets worker_connections = threads; a --threads given here must come with
                # the same --worker-connections, or a full worker goes on accepting and the connection
                # waits for a thread (seen in CI: every connection went to one worker).
                "--threads",
                str(THREADS),
                "--worker-connections",
                str(THREADS),
                "--no-control-socket",
                "examples.cluster.wsgi:app",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SYNCAERYS_REDIS": redis_server.url},
        )
    try:
        # post_worker_init starts each worker's gateway, which joins the cluster: four live nodes.
        redis = redis_server.client()
        wait_until(lambda: master.poll() is not None or len(redis.smembers("rooms-chat:nodes")) == 4, timeout=STARTUP)
        assert master.poll() is None, log_path.read_text()
        with contextlib.ExitStack() as stack:
            clients: list[ClientConnection] = []
            nodes: set[int] = set()
            # The kernel hands each connection to one of the four workers: connect until two hold clients.
            # A worker holding THREADS connections stops accepting, so the next one goes to another.
            while len(nodes) < 2:
                assert len(clients) <= THREADS, f"every connection went to one worker: {log_path.read_text()}"
                name = f"c{len(clients)}"
                # A worker still importing the app answers late: a fresh one may be slow on a busy machine.
                clients.append(stack.enter_context(join(port, name, "lobby", open_timeout=STARTUP)))
                clients[-1].send("/who")
                line = ""
                while not line.startswith("* lobby:"):
                    line = str(clients[-1].recv(timeout=PROMPTLY))
                ids = [int(i) for i in line.split("ids [")[1].rstrip("]").split(", ")]
                nodes = {i >> 32 for i in ids}
            clients[0].send("hello from c0")
            for client in clients:
                recv_until(client, "[lobby] c0: hello from c0")
        # Four workers with worker_connections = threads: syncaerys's hooks find nothing to warn of.
        assert "worker_connections" not in log_path.read_text(), log_path.read_text()
    finally:
        master.terminate()
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
