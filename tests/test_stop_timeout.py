"""The stop's timeout bounds a blocking ``on_stop``, and the warnings name the callback that blocks."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import syncaerys
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import url

CLOSE_PERIOD = 1.0


class BlockingStop(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def on_stop(self) -> None:
        self.record("stop")
        self.release.wait(30)


class BlockingClose(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        super().on_close(client_id, code, reason)
        self.release.wait(30)


def test_a_blocking_on_stop_is_bounded_and_the_clients_still_get_1001(caplog: pytest.LogCaptureFixture) -> None:
    handler = BlockingStop()
    gateway = syncaerys.websocket(handler, close_period=CLOSE_PERIOD)
    server = syncaerys.Server(gateway, port=0)
    server.serve_in_thread()
    try:
        with connect(url(server), open_timeout=PROMPTLY, close_timeout=PROMPTLY) as ws:
            handler.wait_event("open")
            began = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="syncaerys.gateway"):
                server.stop()  # hung forever, no log line, no 1001
            took = time.monotonic() - began
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=PROMPTLY)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        handler.release.set()
        server.stop()
    assert CLOSE_PERIOD + 1.0 <= took < CLOSE_PERIOD + 1.0 + PROMPTLY
    assert any(r.levelno == logging.WARNING and "on_stop has been running" in r.getMessage() for r in caplog.records)


def test_a_stop_waiting_for_a_blocked_on_close_names_it(caplog: pytest.LogCaptureFixture) -> None:
    handler = BlockingClose()
    gateway = syncaerys.websocket(handler, close_period=CLOSE_PERIOD)
    server = syncaerys.Server(gateway, port=0)
    server.serve_in_thread()
    try:
        with connect(url(server), open_timeout=PROMPTLY, close_timeout=PROMPTLY):
            handler.wait_event("open")
        handler.wait_event("close")
        with caplog.at_level(logging.WARNING, logger="syncaerys.gateway"):
            gateway.stop(timeout=0.5)
    finally:
        handler.release.set()
        server.stop()
    stuck = [r.getMessage() for r in caplog.records if "still closing" in r.getMessage()]
    assert stuck and "in on_close for" in stuck[0], stuck
