"""P9: a client that stops reading blocks no sender and is closed by the queue limit or the heartbeat.

Probe P9. With simple-websocket (``ping_interval=1``) and
websockets.sync (``ping_interval=1, ping_timeout=1``), the server's ``send()``
of 64 KiB messages to a client that had stopped reading blocked for good
after 59 sends (~3.8 MB in kernel buffers); neither keepalive closed the
connection within 8 s (websockets' keepalive ``ping()`` waited for the mutex
the blocked sender held), and websockets' ``broadcast()`` to that connection
had not returned after 5 s.

Guarantee: while one client reads nothing, an application thread keeps calling
``send()`` to it, ``send()`` to each of three other clients and
``broadcast()`` to all; no call blocks (each returns within a second), the
others get every message in call order, and the stuck client is closed with
1008: by ``max_send_queue`` when it is set, or, with no queue limit, by the
heartbeat (its pings are never answered). Its pending sends then fail with
``ClientException``, every broadcast future resolves, and the other clients
are still served. (tests/test_endpoint.py has the queue-limit path at 100
clients with byte-exact streams; this is the anchor's scenario, both ways of
catching the stuck client.)
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from syncaerys import BroadcastResult
from syncaerys import ClientException
from syncaerys import Message
from syncaerys import SendFuture
from tests.regressions.helpers import assert_no_errors
from tests.regressions.helpers import count_events
from tests.regressions.helpers import nth_event
from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import Recorder
from tests.utils import SmallWindowClient
from tests.utils import serve
from tests.utils import url

OTHERS = 3
BIG = 64 * 1024
#: Bytes sent to the stuck client at most (its queue grows without a queue limit).
STUCK_BUDGET = 200 * BIG

#: Common options: the others send a message every round, far more than 100 frames a second.
COMMON: dict[str, object] = {"max_frames_per_second": None, "close_period": 0.5}
CASES: dict[str, tuple[dict[str, object], tuple[int, str]]] = {
    "queue-limit": (
        {**COMMON, "max_send_queue": 512 * 1024, "heartbeat_period": None},
        (1008, "Send queue limit exceeded"),
    ),
    "heartbeat": (
        {**COMMON, "max_send_queue": None, "heartbeat_period": 0.2, "queued_ping_limit": 2},
        (1008, "Exceeded unanswered PING limit"),
    ),
}


def drop(recorder: Recorder, client_id: int, message: Message) -> None:
    message.result()


@pytest.mark.parametrize("case", sorted(CASES))
def test_stuck_reader_blocks_nobody_and_is_closed(case: str, caplog: pytest.LogCaptureFixture) -> None:
    options, expected_close = CASES[case]
    # Incoming messages are read and dropped: the others talk each round only so
    # that a starved client thread on a loaded machine is never taken for a dead peer.
    recorder = Recorder(on_data=drop)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(serve(recorder, **options))
        endpoint = recorder.endpoint
        stuck = stack.enter_context(SmallWindowClient(server.port))
        assert stuck.status == 101
        stuck_id = recorder.wait_event("open")[1]
        others: list[ClientConnection] = []
        other_ids: list[int] = []
        for number in range(OTHERS):
            others.append(stack.enter_context(connect(url(server), open_timeout=PROMPTLY)))
            other_ids.append(nth_event(recorder, "open", number + 1)[1])
        pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="app-sender"))

        stuck_futures: list[SendFuture[int]] = []
        broadcasts: list[SendFuture[BroadcastResult]] = []
        durations: list[float] = []
        stuck_bytes = 0
        peak_queue = 0

        def one_round(number: int) -> None:
            """What the application does each round; every call is timed."""
            nonlocal stuck_bytes
            if stuck_bytes < STUCK_BUDGET and stuck_id in endpoint.get_clients():
                started = time.monotonic()
                stuck_futures.append(endpoint.send(b"s" * BIG, stuck_id))
                durations.append(time.monotonic() - started)
                stuck_bytes += BIG
            started = time.monotonic()
            broadcasts.append(endpoint.broadcast(f"broadcast {number}"))
            durations.append(time.monotonic() - started)
            for other_id in other_ids:
                started = time.monotonic()
                endpoint.send(f"direct {number} to {other_id}", other_id)
                durations.append(time.monotonic() - started)

        deadline = time.monotonic() + 3 * PROMPTLY
        number = 0
        rounds_after_close = 0
        while rounds_after_close < 20:
            assert time.monotonic() < deadline, f"the stuck client was not closed; peak queue {peak_queue} bytes"
            # Bounded even if a send were to block: the round runs in the pool.
            pool.submit(one_round, number).result(timeout=PROMPTLY)
            for other, other_id in zip(others, other_ids, strict=True):
                assert other.recv(timeout=PROMPTLY) == f"broadcast {number}"
                assert other.recv(timeout=PROMPTLY) == f"direct {number} to {other_id}"
                other.send("alive")
            info = endpoint.get_info(stuck_id)
            if info is not None:
                peak_queue = max(peak_queue, info.send_queue_bytes)
            if stuck_id not in endpoint.get_clients():
                rounds_after_close += 1
            number += 1

        assert peak_queue > 0, "the stuck client's socket never filled up"
        close = recorder.wait_for(lambda events: next((e for e in events if e[0] == "close"), None))
        assert close[1:] == (stuck_id, *expected_close)
        assert max(durations) < 1.0 * SECOND, f"slowest send/broadcast call took {max(durations):.3f}s"
        # Nothing sent to the stuck client is left pending.
        for future in stuck_futures:
            error = future.exception(PROMPTLY)
            assert error is None or isinstance(error, ClientException), repr(error)
        assert any(isinstance(future.exception(0), ClientException) for future in stuck_futures)
        for broadcast in broadcasts:
            result = broadcast.result(PROMPTLY)
            assert result.delivered >= OTHERS
            assert set(result.failed) <= {stuck_id}
        # The others were never disturbed and are still served.
        assert sorted(endpoint.get_clients()) == sorted(other_ids)
        for other, other_id in zip(others, other_ids, strict=True):
            endpoint.send("still here", other_id)
            assert other.recv(timeout=PROMPTLY) == "still here"
    assert count_events(recorder, "close") == OTHERS + 1
    assert_no_errors(caplog)
