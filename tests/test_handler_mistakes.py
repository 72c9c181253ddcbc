"""Handlers a flask-sock user writes first, refused at mount with what to write instead."""

from __future__ import annotations

import logging
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


def test_an_object_that_is_no_websocket_is_refused() -> None:
    class Handler:
        def on_data(self, client_id: int, message: Any) -> None:
            pass

    with pytest.raises(TypeError, match=r"not Handler: subclass syncaerys\.Websocket"):
        syncaerys.websocket(Handler())


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
