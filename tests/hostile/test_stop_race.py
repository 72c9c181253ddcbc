"""A handshake in flight while the server stops gets a 503, never a 101 after on_stop."""

from __future__ import annotations

import threading
from typing import Any

import syncaerys
from tests.test_handshake import exchange
from tests.test_handshake import upgrade_request
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import wait_until


def test_a_handshake_in_on_handshake_during_stop_is_answered_503_before_stop_returns() -> None:
    entered = threading.Event()
    release = threading.Event()

    def handshake(request: Any, response: syncaerys.Response) -> None:
        entered.set()
        release.wait(PROMPTLY)

    recorder = Recorder(handshake=handshake)
    gateway = syncaerys.websocket(recorder, close_period=2.0)
    server = syncaerys.Server(gateway, port=0)
    server.serve_in_thread()
    answers: list[int] = []
    client = threading.Thread(
        target=lambda: answers.append(exchange(server.port, upgrade_request(server.port))[0]), daemon=True
    )
    client.start()
    assert entered.wait(PROMPTLY)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    wait_until(lambda: gateway.stopping)
    assert recorder.kinds() == ["start", "handshake"], "on_stop ran while a handshake was in flight"
    release.set()
    stopper.join(2 * PROMPTLY)
    assert not stopper.is_alive()
    client.join(PROMPTLY)
    assert answers == [503]
    assert recorder.kinds() == ["start", "handshake", "stop"]


def test_new_handshakes_during_stop_get_503() -> None:
    blocker = threading.Event()

    class SlowStop(Recorder):
        def on_stop(self) -> None:
            self.record("stop")
            blocker.wait(PROMPTLY)

    recorder = SlowStop()
    gateway = syncaerys.websocket(recorder)
    server = syncaerys.Router().get("/chat", gateway)
    with syncaerys.Server(server, port=0) as running:
        port = running.port
        stopper = threading.Thread(target=gateway.stop)
        stopper.start()
        recorder.wait_event("stop")
        status, _, _ = exchange(port, upgrade_request(port))
        blocker.set()
        stopper.join(PROMPTLY)
    assert status == 503
    assert "open" not in recorder.kinds() and "handshake" not in recorder.kinds()
