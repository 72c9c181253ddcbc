"""Route arguments the handler cannot take fail when the route is mounted."""

from __future__ import annotations

import logging
from typing import Any

import flask
import pytest
from websockets.sync.client import connect

import syncaerys
import syncaerys.flask
from syncaerys import Message
from syncaerys import Request
from syncaerys import Response
from tests.test_handshake import exchange
from tests.test_handshake import upgrade_request
from tests.utils import PROMPTLY


class NoArguments(syncaerys.Websocket):
    def on_handshake(self, request: Request, response: Response) -> None:
        pass


class TakesName(syncaerys.Websocket):
    def on_start(self, endpoint: syncaerys.Endpoint) -> None:
        self.endpoint = endpoint

    def on_handshake(self, request: Request, response: Response, name: str) -> str:
        return name

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        self.endpoint.send(f"in {handshake_data}", client_id)

    def on_data(self, client_id: int, message: Message) -> None:
        pass


def test_router_refuses_a_handler_that_cannot_take_the_rule_arguments() -> None:
    with pytest.raises(TypeError) as caught:
        syncaerys.Router().get("/room/<name>", syncaerys.websocket(NoArguments()))
    message = str(caught.value)
    assert "'/room/<name>'" in message and "NoArguments.on_handshake" in message and "name" in message


def test_router_refuses_a_handler_that_needs_an_argument_the_rule_lacks() -> None:
    with pytest.raises(TypeError, match="'/room'"):
        syncaerys.Router().get("/room", syncaerys.websocket(TakesName()))


def test_router_refuses_an_aerys_view_that_cannot_take_the_rule_arguments() -> None:
    def view(request: Request, response: Response) -> None:
        response.send("x")

    with pytest.raises(TypeError, match="responder"):
        syncaerys.Router().get("/page/<slug>", view)


def test_router_accepts_matching_handlers_and_route_args() -> None:
    class Catchall(syncaerys.Websocket):
        def on_handshake(self, request: Request, response: Response, **route_args: Any) -> None:
            pass

    router = syncaerys.Router().get("/room/<name>", syncaerys.websocket(TakesName()))
    router.get("/any/<a>/<int:b>", syncaerys.websocket(Catchall()))
    with syncaerys.Server(router, port=0) as server, connect(f"ws://127.0.0.1:{server.port}/room/lobby") as ws:
        assert ws.recv(timeout=PROMPTLY) == "in lobby"


def test_flask_route_refuses_at_mount_on_the_app_and_with_defaults() -> None:
    app = flask.Flask(__name__)
    sockets = syncaerys.flask.Websockets(app)
    with pytest.raises(TypeError, match="'/room/<name>'"):
        sockets.route("/room/<name>", NoArguments())
    with pytest.raises(TypeError, match="name"):
        syncaerys.flask.route(app, "/lobby", NoArguments(), rule_options={"defaults": {"name": "lobby"}})
    syncaerys.flask.route(app, "/lobby", TakesName(), rule_options={"defaults": {"name": "lobby"}})


def test_flask_blueprint_is_checked_with_its_url_prefix_when_registered() -> None:
    app = flask.Flask(__name__)
    org = flask.Blueprint("org", __name__, url_prefix="/org/<org>")
    syncaerys.flask.route(org, "/room/<name>", TakesName())  # takes name, not org
    with pytest.raises(TypeError, match="'/org/<org>/room/<name>'"):
        app.register_blueprint(org)


def test_serve_from_a_users_view_with_bad_arguments_is_a_500_that_says_why(caplog: pytest.LogCaptureFixture) -> None:
    app = flask.Flask(__name__)
    gateway = syncaerys.websocket(NoArguments())

    @app.get("/chat/<room>", websocket=True)
    def chat(room: str) -> flask.Response:
        return syncaerys.flask.serve(gateway, room=room)

    with caplog.at_level(logging.ERROR, logger="syncaerys"), syncaerys.Server(app, port=0) as server:
        raw = upgrade_request(server.port).replace(b"GET /chat ", b"GET /chat/lobby ")
        status, _, _ = exchange(server.port, raw)
    assert status == 500
    assert "NoArguments.on_handshake" in caplog.text and "room" in caplog.text
