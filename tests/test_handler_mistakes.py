"""Handlers a flask-sock user writes first, refused at mount with what to write instead."""

from __future__ import annotations

import logging
import os
from typing import Any

import flask
import pytest

import syncaerys
import syncaerys.flask


def echo(ws: Any) -> None:  # a flask-sock view
    while True:
        ws.send(ws.receive())


def test_a_plain_function_is_refused_at_mount_naming_the_porting_guide() -> None:
    # It was accepted; its messages went nowhere.
    with pytest.raises(TypeError, match=r"not the function echo\(\).*on_data.*docs/howto/flask-sock.md"):
        syncaerys.websocket(echo)
    app = flask.Flask(__name__)
    with pytest.raises(TypeError, match=r"syncaerys\.Websocket instance"):
        syncaerys.flask.route(app, "/e", echo)
    with pytest.raises(TypeError, match=r"syncaerys\.Websocket instance"):
        syncaerys.flask.Websockets(app).route("/e", echo)
    assert not [rule for rule in app.url_map.iter_rules() if rule.rule == "/e"]


def test_an_object_without_callbacks_is_refused_and_a_duck_typed_one_accepted() -> None:
    class Handler:
        def handle(self, ws: Any) -> None:
            pass

    with pytest.raises(TypeError, match=r"not Handler, which has none of the callbacks: subclass syncaerys\.Websocket"):
        syncaerys.websocket(Handler())

    class AerysStyle:  # the callbacks without the base class
        def onData(self, client_id: int, message: Any) -> None:
            pass

    assert syncaerys.websocket(AerysStyle()).callbacks.on_data.__name__ == "onData"


def test_the_flask_sock_decorator_habit_says_route_is_no_decorator() -> None:
    sockets = syncaerys.flask.Websockets(flask.Flask(__name__))
    # It was: TypeError: route() missing 1 required positional argument: 'target'.
    with pytest.raises(TypeError, match=r"not a decorator.*sockets.route\('/echo', Echo\(\)\).*flask-sock.md"):
        sockets.route("/echo")


def test_a_misspelt_callback_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    class Chat(syncaerys.Websocket):
        def on_message(self, client_id: int, message: Any) -> None:
            pass

        def onConnect(self, client_id: int, data: Any) -> None:
            pass

        def on_room_joined(self, room: str) -> None:  # a helper of its own: no warning
            pass

        def onData(self, client_id: int, message: Any) -> None:  # Aerys's spelling: a callback
            pass

    with caplog.at_level(logging.WARNING, logger="syncaerys.gateway"):
        syncaerys.websocket(Chat())
    warned = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert len(warned) == 2, warned
    assert warned[0].startswith("Chat.onConnect is not a syncaerys callback") and "on_open?" in warned[0]
    assert warned[1].startswith("Chat.on_message is not a syncaerys callback") and "on_data?" in warned[1]


def test_run_says_websocket_options_go_to_websocket_before_touching_the_process() -> None:
    # It was TypeError: Server.__init__() got an unexpected keyword argument, after the CPU pinning.
    affinity = os.sched_getaffinity(0)
    with pytest.raises(TypeError, match=r"websocket option\(s\) heartbeat_period.*syncaerys.websocket\(handler, "):
        gateway = syncaerys.websocket(Echo())
        syncaerys.run(gateway, heartbeat_period=5, cpu=min(affinity), switch_interval=None, batch_scheduling=False)  # type: ignore[call-arg]
    assert os.sched_getaffinity(0) == affinity
    with pytest.raises(TypeError, match=r"unknown option.*max_header_bytes"):
        syncaerys.run(syncaerys.websocket(Echo()), max_header=5)  # type: ignore[call-arg]


@pytest.mark.parametrize(("host", "port"), [(1337, 1337), ("127.0.0.1", "1337"), ("127.0.0.1", 70000)])
def test_a_server_address_of_the_wrong_kind_is_named(host: Any, port: Any) -> None:
    # Server(app, host=1337) was AttributeError: 'int' object has no attribute 'startswith'.
    with pytest.raises(TypeError, match=r"host must be|port must be"):
        syncaerys.Server(syncaerys.websocket(Echo()), host, port)


def test_the_flask_extension_checks_its_options_at_once() -> None:
    # Websockets(app, heartbeet=5) failed only at the first route().
    with pytest.raises(syncaerys.OptionError, match="unknown option 'heartbeet'"):
        syncaerys.flask.Websockets(flask.Flask(__name__), heartbeet=5)  # type: ignore[call-arg]


class Echo(syncaerys.Websocket):
    pass


def test_an_endpoint_on_start_did_not_keep_is_explained_as_such() -> None:
    class Forgetful(syncaerys.Websocket):
        def on_start(self, endpoint: syncaerys.Endpoint) -> None:
            pass  # forgot self.endpoint = endpoint

    handler = Forgetful()
    with pytest.raises(syncaerys.NotStartedError, match=r"on_start\(endpoint\) has not run yet"):
        handler.endpoint.broadcast("x")
    gateway = syncaerys.websocket(handler)
    gateway.start()
    try:
        # It said "on_start has not run yet", which it had.
        with pytest.raises(syncaerys.NotStartedError, match=r"ran but did not keep the endpoint.*self\.endpoint = "):
            handler.endpoint.broadcast("x")
    finally:
        gateway.stop()
