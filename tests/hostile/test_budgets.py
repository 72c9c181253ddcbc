"""Inbound budgets: timeouts honoured while reads pause; inflated bytes charged; tiny frames."""

from __future__ import annotations

import time

from websockets.sync.client import connect

from syncaerys import Message
from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import serve
from tests.utils import url

OP_CONT = 0x0
OP_TEXT = 0x1
KiB = 1024


def test_result_timeout_is_honoured_while_the_frame_rate_limit_pauses_reads() -> None:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        started = time.monotonic()
        try:
            message.result(timeout=0.5)
        except TimeoutError:
            rec.record("timeout", time.monotonic() - started)
        rec.record("rest", message.result(timeout=30 * SECOND))

    recorder = Recorder(on_data=on_data)
    # 300 empty fragments at 100 frames/s: reading them all takes about 2 s.
    stream = client_frame(OP_TEXT, b"x", fin=False) + client_frame(OP_CONT, b"", fin=False) * 300
    stream += client_frame(OP_CONT, b"y", fin=True)
    with serve(recorder, heartbeat_period=None) as server, RawClient(server.port) as client:
        client.send(stream)
        _, elapsed = recorder.wait_event("timeout", timeout=30 * SECOND)
        assert 0.45 <= elapsed < 1.5 * SECOND, elapsed
        assert recorder.wait_event("rest", timeout=30 * SECOND) == ("rest", "xy")


def test_result_timeout_is_honoured_while_the_byte_budget_pauses_reads() -> None:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        started = time.monotonic()
        try:
            message.result(timeout=0.5)
        except TimeoutError:
            rec.record("timeout", time.monotonic() - started)

    recorder = Recorder(on_data=on_data)
    options = {"max_bytes_per_minute": 60 * KiB, "max_frames_per_second": None, "heartbeat_period": None}
    stream = client_frame(OP_TEXT, b"x" * (50 * KiB), fin=False) + client_frame(OP_CONT, b"x" * (50 * KiB), fin=False)
    with serve(recorder, **options) as server, RawClient(server.port) as client:
        client.send(stream)
        _, elapsed = recorder.wait_event("timeout", timeout=30 * SECOND)
        assert 0.45 <= elapsed < 1.5 * SECOND, elapsed


def test_the_byte_budget_is_charged_on_inflated_bytes() -> None:
    # 600 KiB a minute is 10 KiB/s. A 610 KiB message of zeros compresses to about
    # 1 KiB: charged on the wire it costs nothing; inflated it overdraws the budget
    # by 10 KiB, which takes a second to refill before the next message is read.
    budget = 600 * KiB
    recorder = Recorder()
    options = {"compression": True, "max_bytes_per_minute": budget, "max_frames_per_second": None}
    with serve(recorder, **options) as server, connect(url(server), max_size=None) as ws:
        ws.send(b"\0" * (budget + 10 * KiB))
        assert len(ws.recv(timeout=PROMPTLY)) == budget + 10 * KiB
        started = time.monotonic()
        ws.send("after")
        assert ws.recv(timeout=10 * PROMPTLY) == "after"
        elapsed = time.monotonic() - started
    assert elapsed >= 0.5, f"the second message was read after {elapsed:.3f} s: inflated bytes were not charged"


def test_a_message_of_many_tiny_frames_keeps_memory_near_its_size() -> None:
    import tracemalloc

    count = 20_000

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            text = message.result(timeout=30 * SECOND)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        rec.record("data", len(text), peak)

    recorder = Recorder(on_data=on_data)
    stream = client_frame(OP_TEXT, b"a", fin=False)
    # Two characters a frame: CPython caches one-character strings, which would hide the cost.
    stream += client_frame(OP_CONT, b"bb", fin=False) * (count - 2) + client_frame(OP_CONT, b"", fin=False) * count
    stream += client_frame(OP_CONT, b"c", fin=True)
    options = {"max_frames_per_second": None, "max_bytes_per_minute": None}
    with serve(recorder, **options) as server, RawClient(server.port) as client:
        client.send(stream)
        _, size, peak = recorder.wait_event("data", timeout=30 * SECOND)
    assert size == 2 * count - 2
    # One object per frame would be over a megabyte (20,000 two-character strings and their slots).
    assert peak < 300 * KiB, f"{peak} bytes at peak for a {size}-character message"
