"""Logs that name the real cause: a handler blocking a closing client."""

from __future__ import annotations

import logging
import threading

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import syncaerys
from syncaerys import Message
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import url


class Waiter(logging.Handler):
    """Sets ``seen`` when a record containing ``text`` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(f"{record.levelname} {message}")
        if self.text in message:
            self.seen.set()


def test_a_blocked_on_data_is_named_instead_of_blaming_the_peer() -> None:
    release = threading.Event()

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        rec.record("blocked", client_id)
        release.wait(6 * PROMPTLY)

    recorder = Recorder(on_data=on_data)
    waiter = Waiter("has been running")
    logger = logging.getLogger("syncaerys")
    logger.addHandler(waiter)
    previous = logger.level
    logger.setLevel(logging.INFO)
    server = syncaerys.Server(syncaerys.websocket(recorder, close_period=0.3), port=0)
    server.serve_in_thread()
    stopper = threading.Thread(target=server.stop)
    try:
        with connect(url(server), close_timeout=PROMPTLY) as ws:
            ws.send("work")
            _, client_id = recorder.wait_event("blocked")
            stopper.start()
            # The client answers the 1001; the server's thread is in on_data and cannot read it.
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=PROMPTLY)
            assert waiter.seen.wait(PROMPTLY), waiter.messages
    finally:
        release.set()
        if stopper.is_alive() or stopper.ident is not None:
            stopper.join(PROMPTLY)
        else:
            server.stop()
        logger.removeHandler(waiter)
        logger.setLevel(previous)
    warnings = [m for m in waiter.messages if "has been running" in m]
    assert len(warnings) == 1, waiter.messages  # once per call
    assert warnings[0].startswith("WARNING") and f"client {client_id}: on_data" in warnings[0]
    assert not any("no close frame from the peer" in m for m in waiter.messages), waiter.messages
