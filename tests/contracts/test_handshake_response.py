"""A response object returned by on_handshake denies with it."""

from __future__ import annotations

import logging
from typing import Any

import flask
import pytest
from werkzeug.wrappers import Response as WerkzeugResponse

import syncaerys
import syncaerys.flask
from tests.test_handshake import exchange
from tests.test_handshake import header_values
from tests.test_handshake import upgrade_request
from tests.utils import Recorder
from tests.utils import serve


def werkzeug_401(request: Any, response: syncaerys.Response) -> WerkzeugResponse:
    denial = WerkzeugResponse("nope", status=401, headers={"WWW-Authenticate": 'Bearer realm="chat"'})
    denial.set_cookie("tried", "1")
    return denial


def own_429(request: Any, response: syncaerys.Response) -> syncaerys.Response:
    denial = syncaerys.Response(429)
    denial.set_header("Retry-After", "7")
    denial.send("later")
    return denial


@pytest.mark.parametrize(
    ("handshake", "status", "header", "body"),
    [
        (werkzeug_401, 401, ("www-authenticate", 'Bearer realm="chat"'), b"nope"),
        (own_429, 429, ("retry-after", "7"), b"later"),
    ],
    ids=["werkzeug-response", "syncaerys-response"],
)
def test_a_returned_response_denies_with_its_status_headers_cookies_and_body(
    handshake: Any, status: int, header: tuple[str, str], body: bytes
) -> None:
    recorder = Recorder(handshake=handshake)
    with serve(recorder) as server:
        got_status, headers, got_body = exchange(server.port, upgrade_request(server.port))
    assert got_status == status
    assert header_values(headers, header[0]) == [header[1]]
    assert got_body == body
    if handshake is werkzeug_401:
        assert [c.split(";")[0] for c in header_values(headers, "set-cookie")] == ["tried=1"]
    assert header_values(headers, "sec-websocket-accept") == []
    assert recorder.kinds() == ["start", "handshake", "stop"]


def test_a_returned_response_that_does_not_deny_is_a_500_that_says_why(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(handshake=lambda request, response: WerkzeugResponse("fine", status=200))
    with caplog.at_level(logging.ERROR, logger="syncaerys"), serve(recorder) as server:
        status, _, _ = exchange(server.port, upgrade_request(server.port))
    assert status == 500
    assert "returned a Response with status 200" in caplog.text
    assert "open" not in recorder.kinds()


def test_a_router_gateway_denies_with_a_returned_response() -> None:
    recorder = Recorder(handshake=lambda request, response, name: werkzeug_401(request, response))
    router = syncaerys.Router().get("/chat/<name>", syncaerys.websocket(recorder))
    with syncaerys.Server(router, port=0) as server:
        raw = upgrade_request(server.port).replace(b"GET /chat ", b"GET /chat/lobby ")
        status, headers, body = exchange(server.port, raw)
    assert (status, body) == (401, b"nope")
    assert header_values(headers, "www-authenticate") == ['Bearer realm="chat"']


def test_under_flask_a_returned_flask_response_denies() -> None:
    def handshake(request: Any, response: syncaerys.Response) -> flask.Response:
        return flask.Response("flask says no", status=403, headers={"X-Why": "closed"})

    app = flask.Flask(__name__)
    recorder = Recorder(handshake=handshake)
    syncaerys.flask.Websockets(app).route("/chat", recorder)
    with syncaerys.Server(app, port=0) as server:
        status, headers, body = exchange(server.port, upgrade_request(server.port))
    assert (status, body) == (403, b"flask says no")
    assert header_values(headers, "x-why") == ["closed"]
