"""A Message belongs to its client's thread and its on_data call; result() is idempotent."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
from websockets.sync.client import connect

import syncaerys
from syncaerys import ConcurrencyError
from syncaerys import Message
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url

OP_CONT = 0x0
OP_TEXT = 0x1


def test_concurrency_error_is_a_syncaerys_error_and_a_runtime_error() -> None:
    assert issubclass(ConcurrencyError, syncaerys.SyncaerysError)
    assert issubclass(ConcurrencyError, RuntimeError)


def test_reading_from_a_pool_thread_raises_and_loses_no_message() -> None:
    # What the README's "hand work to your own pool" used to invite: the pool read a
    # truncated message or stole the next message's frames. Now it fails loudly, and the
    # next message arrives whole.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    outcomes: list[concurrent.futures.Future[Any]] = []

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        if not outcomes:
            outcomes.append(pool.submit(message.result))
            concurrent.futures.wait(outcomes, timeout=PROMPTLY)
            rec.record("handed off")
        else:
            rec.record("data", message.result(timeout=PROMPTLY))

    recorder = Recorder(on_data=on_data)
    try:
        with serve(recorder) as server, RawClient(server.port) as client:
            client.send_frame(OP_TEXT, b"first ", fin=False)
            recorder.wait_event("handed off")
            client.send_frame(OP_CONT, b"half", fin=True)
            client.send_frame(OP_TEXT, b"second", fin=False)
            client.send_frame(OP_CONT, b" whole", fin=True)
            assert recorder.wait_event("data") == ("data", "second whole")
    finally:
        pool.shutdown()
    error = outcomes[0].exception(timeout=PROMPTLY)
    assert isinstance(error, ConcurrencyError)
    assert "thread" in str(error) and "on_data" in str(error)


def test_reading_after_on_data_returned_raises() -> None:
    kept: list[Message] = []

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        if not kept:
            kept.append(message)  # and return without reading it all
            return
        try:
            kept[0].result()
        except ConcurrencyError as error:
            rec.record("late read", str(error))
        for late in (kept[0].read, lambda: list(kept[0])):
            with pytest.raises(ConcurrencyError):
                late()
        rec.record("data", message.result())

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_TEXT, b"one", fin=False)
        client.send_frame(OP_CONT, b" two", fin=True)
        client.send_frame(OP_TEXT, b"next", fin=True)
        _, text = recorder.wait_event("late read")
        assert "after its on_data call returned" in text
        assert recorder.wait_event("data") == ("data", "next")


def test_result_is_idempotent_so_a_subclass_can_call_super() -> None:
    class Echo(syncaerys.Websocket):
        def on_start(self, endpoint: syncaerys.Endpoint) -> None:
            self.endpoint = endpoint

        def on_data(self, client_id: int, message: Message) -> None:
            self.endpoint.send(message.result(), client_id)

    class Logged(Echo):
        def __init__(self) -> None:
            self.seen: list[str | bytes] = []

        def on_data(self, client_id: int, message: Message) -> None:
            self.seen.append(message.result())
            super().on_data(client_id, message)

    handler = Logged()
    with serve(handler) as server, connect(url(server)) as ws:
        ws.send("hello")
        assert ws.recv(timeout=PROMPTLY) == "hello"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=PROMPTLY) == b"\x00\x01"
    assert handler.seen == ["hello", b"\x00\x01"]


def test_result_after_partial_reads_returns_the_same_rest_and_read_then_ends() -> None:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        first = message.read(timeout=PROMPTLY)
        rest = message.result(timeout=PROMPTLY)
        rec.record("parts", first, rest, message.result(), message.read())

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_TEXT, b"a", fin=False)
        client.send_frame(OP_CONT, b"b", fin=False)
        client.send_frame(OP_CONT, b"c", fin=True)
        assert recorder.wait_event("parts") == ("parts", "a", "bc", "bc", None)
