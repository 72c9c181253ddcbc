"""The send queue bounds memory by itself (issue: hostile input, round 3, items 1 and 2).

Each client here never reads (a receive window of 4 KiB), so that what the
server sends piles up in its queue once the socket's own buffers are full.
Before: ``max_send_queue`` was enforced only at the next send, a queue's
entries were charged their payload bytes only (a 10-byte send cost ~200), and
every ping got its own queued pong. Under the same attacks, measured with
VmRSS of the server process: 50 non-readers sent 20 MiB each, with nothing
sent after, 31 -> 923 MiB and all 50 still open after 5 s (now 31 -> 33 MiB,
all closed); 1.5 M 10-byte sends to one non-reader 31 -> 273 MiB (now
31 -> 37 MiB); a flood of 1.2-1.9 M pings 31 -> 74 MiB with 695 kB of pongs
queued (now 31 -> 31 MiB, 2 bytes queued).
"""

from __future__ import annotations

import contextlib

import pytest

from syncaerys import ClientException
from syncaerys.client.sendqueue import ENTRY_COST
from syncaerys.client.sendqueue import SEND_QUEUE_CEILING
from syncaerys.client.sendqueue import SEND_QUEUE_GRACE
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import SmallWindowClient
from tests.utils import serve
from tests.utils import wait_until

KiB = 1 << 10
MiB = 1 << 20


def overflow_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "over max_send_queue" in r.getMessage()]


def open_ids(recorder: Recorder, count: int) -> list[int]:
    events = recorder.wait_for(lambda events: len([e for e in events if e[0] == "open"]) >= count and events)
    return [e[1] for e in events if e[0] == "open"]


def fill_until_queued(recorder: Recorder, client_id: int, at_least: int, piece: int) -> int:
    """Send ``piece``-byte messages until more than ``at_least`` bytes wait in the queue; the bytes queued."""
    for _ in range(1000):
        recorder.endpoint.send(b"x" * piece, client_id)
        info = recorder.endpoint.get_info(client_id)
        assert info is not None
        if info.send_queue_bytes > at_least:
            return info.send_queue_bytes
    raise AssertionError("the socket took everything")


def test_a_backlog_over_the_limit_is_closed_after_the_grace_with_nothing_else_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: with the heartbeat off (or a client sending a byte every few seconds) it stayed forever."""
    recorder = Recorder()
    limit = 1 * MiB
    with serve(recorder, max_send_queue=limit, heartbeat_period=None) as server, contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(SmallWindowClient(server.port))
        ids = open_ids(recorder, 3)
        for client_id in ids:
            # Over the limit, under the ceiling: only the grace can close it.
            queued = fill_until_queued(recorder, client_id, 3 * limit // 2, 256 * KiB)
            assert queued < SEND_QUEUE_CEILING * limit
        # Nothing more is sent: the queue's own check must close each of them.
        closed = recorder.wait_for(
            lambda events: len({e[1] for e in events if e[0] == "close"}) == 3 and events,
            timeout=SEND_QUEUE_GRACE + PROMPTLY,
        )
        assert all(recorder.endpoint.get_info(i) is None for i in ids)
        assert {e[1] for e in closed if e[0] == "close"} == set(ids)
    assert len(overflow_lines(caplog)) == 3


def test_over_the_ceiling_a_client_is_closed_at_once_whatever_the_grace(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    limit = 256 * KiB
    with serve(recorder, max_send_queue=limit, heartbeat_period=None) as server:
        with SmallWindowClient(server.port):
            (client_id,) = open_ids(recorder, 1)
            fill_until_queued(recorder, client_id, 0, 64 * KiB)
            # One message past the ceiling: refused in the same call, not a second later.
            recorder.endpoint.send(b"y" * (SEND_QUEUE_CEILING * limit + 1), client_id)
            after = recorder.endpoint.send(b"z", client_id)
            assert after.done() and isinstance(after.exception(), ClientException)
    assert len(overflow_lines(caplog)) == 1


def test_tiny_sends_are_charged_what_they_cost() -> None:
    """Before: 12 bytes counted per 10-byte send (of ~200 held), so the limit let ~80,000 pile up per MiB."""
    recorder = Recorder()
    limit = 256 * KiB
    with serve(recorder, max_send_queue=limit, heartbeat_period=None) as server:
        with SmallWindowClient(server.port):
            (client_id,) = open_ids(recorder, 1)
            fill_until_queued(recorder, client_id, 0, 64 * KiB)
            accepted = 0
            for _ in range(20_000):
                future = recorder.endpoint.send(b"0123456789", client_id)
                if future.done() and future.exception() is not None:
                    break
                accepted += 1
            # The ceiling is reached after about ceiling / (12 + ENTRY_COST) sends, well within the grace.
            assert accepted <= SEND_QUEUE_CEILING * limit // (12 + ENTRY_COST) + 100, accepted
            wait_until(lambda: recorder.endpoint.get_info(client_id) is None)
    assert next(e for e in recorder.events if e[0] == "close")[1] == client_id
