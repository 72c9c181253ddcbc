"""Slowloris in the body phase: part of a body, then silence, must not hold the server."""

from __future__ import annotations

import socket
import time

import pytest
from websockets.sync.client import connect

import syncaerys
from tests.test_handshake import upgrade_request
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import werkzeug_serving


def send_part_of_a_body(port: int, content_length: bool) -> socket.socket:
    """A request to the gateway (no Upgrade header: 426) with ~20 kB of body and no end; the socket stays open."""
    headers: dict[str, str | None] = {"Upgrade": None, **({"Content-Length": "1000000"} if content_length else {})}
    sock = socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY)
    sock.sendall(upgrade_request(port, headers=headers) + b"x" * 20_000)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything until the server closes; and how long that took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "no-content-length"])
def test_a_silent_body_loses_its_connection_and_slot_soon_after_the_answer(content_length: bool) -> None:
    recorder = Recorder()
    gateway = syncaerys.websocket(recorder)
    with syncaerys.Server(gateway, port=0, max_connections=3) as server:
        attackers = [send_part_of_a_body(server.port, content_length) for _ in range(3)]
        try:
            for attacker in attackers:
                data, elapsed = read_until_closed(attacker, 3 * PROMPTLY)
                assert data.startswith(b"HTTP/1.1 400" if content_length else b"HTTP/1.1 426"), data[:100]
                assert elapsed < 2 * PROMPTLY
            # Every slot is free again: a real client gets in.
            with connect(f"{server.url}/", open_timeout=PROMPTLY) as ws:
                ws.send("in")
                assert ws.recv(timeout=PROMPTLY) == "in"
        finally:
            for attacker in attackers:
                attacker.close()
    assert recorder.kinds().count("open") == 1


def test_a_plain_request_whose_body_stops_is_dropped_after_header_timeout() -> None:
    def view(request: syncaerys.Request, response: syncaerys.Response) -> None:
        response.send(request.get_data())  # reads the whole body

    with syncaerys.Server(syncaerys.Host().use(view), port=0, header_timeout=0.5) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY)
        with sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"y" * 10)
            data, elapsed = read_until_closed(sock, 3 * PROMPTLY)
        assert elapsed < 2 * PROMPTLY
        assert b"yyyyyyyyyy" not in data  # no answer built from a body that never came


def test_under_werkzeugs_dev_server_a_silent_body_is_dropped_too() -> None:
    recorder = Recorder()
    gateway = syncaerys.websocket(recorder)
    try:
        with werkzeug_serving(gateway) as port, send_part_of_a_body(port, content_length=False) as attacker:
            data, elapsed = read_until_closed(attacker, 3 * PROMPTLY)
        assert data.startswith(b"HTTP/1.1 426"), data[:100]
        assert elapsed < 2 * PROMPTLY
    finally:
        gateway.stop()
