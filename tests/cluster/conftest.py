"""Fixtures of the cluster tests: a private redis-server, and server processes on a RedisBackplane.

Every test gets its own redis-server on a free port (empty, no persistence),
so that stopping or restarting it touches nobody else. ``redis-server`` must
be on PATH: without it the tests are skipped, so that the README's test
command works on a fresh machine, except with ``SYNCAERYS_REQUIRE_REDIS=1``,
which CI sets: then they fail. The wire format tests need neither.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import Node
from tests.cluster.helpers import NodeFactory
from tests.cluster.helpers import RedisServer
from tests.cluster.helpers import launch_node
from tests.cluster.helpers import private_redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for this test, always killed at teardown."""
    with private_redis(tmp_path) as server:
        yield server


@pytest.fixture
def start_nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[NodeFactory]:
    """``start_nodes(n, channel=..., node_ttl=...)``: n server processes on the test's Redis, started together.

    Keyword arguments are :func:`~tests.cluster.helpers.launch_node`'s. Every
    process is killed and every client dropped at teardown.
    """
    nodes: list[Node] = []
    names = itertools.count(1)

    def start(count: int = 2, **options: Any) -> list[Node]:
        started = [launch_node(redis_server.url, tmp_path / f"node-{next(names)}.log", **options) for _ in range(count)]
        nodes.extend(started)
        for node in started:
            node.wait_listening()
        return started

    try:
        yield start
    finally:
        for node in nodes:
            node.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Add the logs of the test's redis-servers and nodes to its report when it fails."""
    report: Any = yield
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and call.when == "call" and tmp_path is not None:
        for path in sorted(Path(tmp_path).glob("*.log")):
            report.sections.append((f"log {path.name}", path.read_text(errors="replace")[-4000:]))
    return report  # type: ignore[no-any-return]
