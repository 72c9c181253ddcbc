"""NodeRecord against a real Redis: a lost liveness key claimed back by two threads at once is no clash."""

from __future__ import annotations

import logging
import threading

import pytest

from syncaerys.backplane.cluster import Keys
from syncaerys.backplane.cluster import NodeRecord
from tests.cluster.helpers import RedisServer


def test_two_threads_claiming_the_lost_key_back_log_no_clash(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis_server.client()
    keys = Keys("record-test")
    record = NodeRecord(client, keys, "our-token", ttl=10.0)
    node = record.claim()
    barrier = threading.Barrier(3)  # this thread and the two beating (listener and writer)
    rounds = 100
    outcomes: list[bool] = []

    def beat() -> None:
        for _ in range(rounds):
            barrier.wait(timeout=5)
            outcomes.append(record.heartbeat())
            barrier.wait(timeout=5)

    with caplog.at_level(logging.ERROR, logger="syncaerys.backplane"):
        beaters = [threading.Thread(target=beat) for _ in range(2)]
        for thread in beaters:
            thread.start()
        for _ in range(rounds):
            client.delete(keys.node(node))  # Redis "restarted empty" under both threads
            barrier.wait(timeout=5)
            barrier.wait(timeout=5)
        for thread in beaters:
            thread.join(timeout=5)
    assert client.get(keys.node(node)) == b"our-token"
    assert len(outcomes) == 2 * rounds
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_key_held_by_another_process_is_reported(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    client = redis_server.client()
    keys = Keys("record-test")
    record = NodeRecord(client, keys, "our-token", ttl=10.0)
    node = record.claim()
    client.set(keys.node(node), "their-token")
    with caplog.at_level(logging.ERROR, logger="syncaerys.backplane"):
        assert record.heartbeat() is False
    assert "belongs to another process" in caplog.text
