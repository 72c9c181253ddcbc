"""One gateway mounted on two rules, or served by two servers, is one endpoint for both (docs/reference/serving.md)."""

from __future__ import annotations

import flask
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import syncaerys
import syncaerys.flask
from syncaerys import Message
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import wait_until


def test_two_rules_of_one_app_share_the_clients_and_one_on_start() -> None:
    def broadcast(r: Recorder, client_id: int, message: Message) -> None:
        r.endpoint.broadcast(message.result())

    recorder = Recorder(on_data=broadcast)
    gateway = syncaerys.websocket(recorder)
    app = flask.Flask(__name__)
    sockets = syncaerys.flask.Websockets(app)
    sockets.route("/chat", gateway)
    sockets.route("/chat/legacy", gateway)
    assert sockets.gateways() == [gateway]  # listed once, stopped once
    with syncaerys.Server(app, port=0) as server:
        base = f"ws://127.0.0.1:{server.port}"
        with connect(f"{base}/chat") as new, connect(f"{base}/chat/legacy") as old:
            wait_until(lambda: len(gateway.endpoint.get_clients()) == 2)
            old.send("from the old path")
            assert new.recv(timeout=PROMPTLY) == old.recv(timeout=PROMPTLY) == "from the old path"
    assert recorder.kinds().count("start") == 1
    assert sorted(e[1] for e in recorder.events if e[0] == "handshake") == ["/chat", "/chat/legacy"]


def test_two_servers_of_one_gateway_stop_together() -> None:
    gateway = syncaerys.websocket(Recorder())
    first = syncaerys.Server(gateway, port=0)
    second = syncaerys.Server(gateway, port=0)
    first.serve_in_thread()
    second.serve_in_thread()
    try:
        with connect(f"ws://127.0.0.1:{second.port}/", close_timeout=PROMPTLY) as ws:
            wait_until(lambda: len(gateway.endpoint.get_clients()) == 1)
            first.stop()  # the gateway's stop: its clients on every server get 1001
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=PROMPTLY)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        first.stop()
        second.stop()
