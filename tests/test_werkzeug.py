"""The gateway under werkzeug's own threaded dev server (a foreign WSGI server).

The bug this guards against (flask-sock on werkzeug's dev server): after the close frame
the server wrote ``HTTP/1.1 200 OK ...`` onto the WebSocket stream. Here
nothing may follow the close frame, and nothing is logged as an error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest

import syncaerys
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import werkzeug_serving


@contextlib.contextmanager
def werkzeug_server(recorder: Recorder, **options: object) -> Iterator[int]:
    gateway = syncaerys.websocket(recorder, **options)  # type: ignore[arg-type]
    try:
        with werkzeug_serving(gateway) as port:
            yield port
    finally:
        gateway.stop()


def assert_no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def test_on_start_runs_at_the_first_request() -> None:
    recorder = Recorder()
    with werkzeug_server(recorder) as port, RawClient(port) as client:
        assert client.status == 101
        recorder.wait_event("open")
        assert recorder.kinds()[:3] == ["start", "handshake", "open"]


def test_client_close_leaves_nothing_after_the_close_frame(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    with werkzeug_server(recorder) as port, RawClient(port) as client:
        client.send_frame(0x1, b"hi")
        assert client.recv_frame() == (0x1, True, b"hi")
        client.send_frame(0x8, (1000).to_bytes(2, "big") + b"bye")
        assert client.recv_frame() == (0x8, True, (1000).to_bytes(2, "big") + b"bye")
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2:] == (1000, "bye")
    assert_no_errors(caplog)


def test_server_close_leaves_nothing_after_the_close_frame(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(on_data=lambda rec, cid, msg: rec.endpoint.close(cid, 4000, "go"))
    with werkzeug_server(recorder) as port, RawClient(port) as client:
        client.send_frame(0x1, b"close me")
        assert client.recv_close() == (4000, "go")
        client.send_frame(0x8, (4000).to_bytes(2, "big"))
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2:] == (4000, "go")
    assert_no_errors(caplog)


def test_protocol_error_leaves_nothing_after_the_close_frame(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    with werkzeug_server(recorder) as port, RawClient(port) as client:
        client.send_frame(0x1, b"\xc3\x28")  # invalid UTF-8
        assert client.recv_close()[0] == 1007
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2] == 1007
    assert_no_errors(caplog)


def test_heartbeat_close_leaves_nothing_after_the_close_frame(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    with werkzeug_server(recorder, heartbeat_period=0.05, queued_ping_limit=1) as port, RawClient(port) as client:
        assert client.recv_frame() == (0x9, True, b"1")
        assert client.recv_close() == (1008, "Exceeded unanswered PING limit")
        client.send_frame(0x8, (1008).to_bytes(2, "big"))
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2] == 1008
    assert_no_errors(caplog)


def test_rejected_handshake_is_a_normal_http_response() -> None:
    recorder = Recorder(handshake=lambda request, response: setattr(response, "status", 403))
    with werkzeug_server(recorder) as port:
        client = RawClient(port)
        assert client.status == 403
        client.close()
    assert "open" not in recorder.kinds()
