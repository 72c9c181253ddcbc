"""Frames sent in the same segment as the upgrade request reach on_data."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path

import flask
import pytest

import syncaerys
import syncaerys.flask
from tests.test_gunicorn import Gunicorn
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import werkzeug_serving

OP_TEXT = 0x1


def upgrade_with_frames(port: int, path: str, *frames: bytes) -> RawClient:
    """A RawClient whose request and first frames go out in one sendall (one segment on loopback)."""
    client = RawClient.__new__(RawClient)
    client.sock = socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY)
    client.buffer = b""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    client.sock.sendall(request + b"".join(frames))
    head = client._read_until(b"\r\n\r\n")
    client.status = int(head.split(b" ", 2)[1])
    client.head = head.decode("latin-1")
    return client


@pytest.mark.parametrize("host", ["syncaerys", "werkzeug", "flask-on-werkzeug"])
def test_early_frames_are_echoed(host: str) -> None:
    recorder = Recorder()
    gateway = syncaerys.websocket(recorder)
    frames = [client_frame(OP_TEXT, b"sent before the 101"), client_frame(OP_TEXT, b"and another")]
    if host == "syncaerys":
        with syncaerys.Server(gateway, port=0) as server, upgrade_with_frames(server.port, "/", *frames) as client:
            assert client.status == 101
            assert [client.recv_frame() for _ in range(2)] == [
                (OP_TEXT, True, b"sent before the 101"),
                (OP_TEXT, True, b"and another"),
            ]
        return
    app: object = gateway
    if host == "flask-on-werkzeug":
        flask_app = flask.Flask(__name__)
        syncaerys.flask.Websockets(flask_app).route("/", gateway)
        app = flask_app
    try:
        with werkzeug_serving(app) as port, upgrade_with_frames(port, "/", *frames) as client:
            assert client.status == 101
            assert [client.recv_frame()[2] for _ in range(2)] == [b"sent before the 101", b"and another"]
    finally:
        gateway.stop()


@pytest.mark.timeout(60)
def test_early_frames_are_echoed_under_gunicorn(tmp_path: Path) -> None:
    server = Gunicorn(tmp_path / "gunicorn.log")
    server.start()
    try:
        with upgrade_with_frames(server.port, "/room/early", client_frame(OP_TEXT, b"early bird")) as client:
            assert client.status == 101
            assert client.recv_frame() == (OP_TEXT, True, b"early bird")
    finally:
        server.stop()
