"""Under Flask, views and background jobs push at any time after the app is up."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

import flask
from websockets.sync.client import connect
from werkzeug.serving import make_server

import syncaerys
import syncaerys.flask
from tests.test_examples import example
from tests.utils import PROMPTLY
from tests.utils import Recorder


def post(url: str, body: bytes = b"") -> tuple[int, Any]:
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=PROMPTLY) as reply:
        return reply.status, json.loads(reply.read())


def test_the_gateway_starts_at_the_apps_first_request_of_any_kind() -> None:
    app = flask.Flask(__name__)
    recorder = Recorder()
    sockets = syncaerys.flask.Websockets(app)
    gateway = sockets.route("/chat", recorder)
    blueprint = flask.Blueprint("more", __name__)
    other = Recorder()
    other_gateway = syncaerys.flask.route(blueprint, "/other", other)
    app.register_blueprint(blueprint)

    @app.post("/push")
    def push() -> dict[str, int]:
        # self.endpoint, as the quick start keeps it in on_start, exists by now.
        return {"delivered": recorder.endpoint.broadcast("pushed").result(PROMPTLY).delivered}

    server = make_server("127.0.0.1", 0, app, threaded=True)  # werkzeug's own server: app.run's
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert recorder.kinds() == []
        assert post(f"{base}/push") == (200, {"delivered": 0})
        assert recorder.kinds()[0] == "start" and other.kinds()[0] == "start"
        with connect(f"ws://127.0.0.1:{server.server_port}/chat") as ws:
            recorder.wait_event("open")
            assert post(f"{base}/push") == (200, {"delivered": 1})
            assert ws.recv(timeout=PROMPTLY) == "pushed"
    finally:
        server.shutdown()
        sockets.stop()
        other_gateway.stop()
    assert gateway.state == "STOPPED"


def test_the_flask_example_pushes_from_a_view_and_from_a_background_job(tmp_path: Path) -> None:
    with example("flask_app", tmp_path) as running:
        base = f"http://127.0.0.1:{running.port}"
        # Before any websocket client: the first request started the gateway.
        assert post(f"{base}/room/lobby/announce", b"anyone?") == (200, {"room": "lobby", "delivered": 0})
        with running.connect("/room/lobby") as ws, running.connect("/room/kitchen") as elsewhere:
            assert post(f"{base}/room/lobby/announce", b"hello, lobby") == (200, {"room": "lobby", "delivered": 1})
            assert ws.recv(timeout=PROMPTLY) == "hello, lobby"
            assert post(f"{base}/room/lobby/report") == (202, {"room": "lobby", "status": "started"})
            assert ws.recv(timeout=PROMPTLY) == "report for lobby is ready"
            elsewhere.send("only the kitchen")
            assert elsewhere.recv(timeout=PROMPTLY) == "only the kitchen"
        assert running.terminate() == 0
    output = running.log.read_text()
    assert "Traceback" not in output, output
