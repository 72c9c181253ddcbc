"""Callback order and exactly-once on_close with the right code, on every path."""

from __future__ import annotations

import socket

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url


def closes(recorder: Recorder) -> list[tuple[object, ...]]:
    return [e for e in recorder.events if e[0] == "close"]


def test_callback_order_and_client_close_echoes_code_and_reason() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        with connect(url(server)) as ws:
            ws.send("hello")
            assert ws.recv(timeout=PROMPTLY) == "hello"
            ws.close(4001, "done here")
            assert ws.protocol.close_rcvd is not None
            assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (4001, "done here")
        recorder.wait_event("close")
    kinds = recorder.kinds()
    assert kinds == ["start", "handshake", "open", "data", "close", "stop"]
    _, client_id, code, reason = recorder.wait_event("close")
    assert (code, reason) == (4001, "done here")
    assert recorder.wait_event("open")[1] == client_id


def test_empty_close_frame_gives_1005_and_empty_echo() -> None:
    recorder = Recorder()
    with serve(recorder) as server, RawClient(server.port) as client:
        assert client.status == 101
        client.send_frame(0x8, b"")
        opcode, fin, payload = client.recv_frame()
        assert (opcode, fin, payload) == (0x8, True, b"")
        assert client.recv_until_eof() == b""
        event = recorder.wait_event("close")
        assert event[2:] == (1005, "")
    assert len(closes(recorder)) == 1


def test_tcp_drop_gives_1006_and_nothing_written() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        client = RawClient(server.port)
        recorder.wait_event("open")
        client.sock.shutdown(socket.SHUT_WR)
        assert client.recv_until_eof() == b""
        client.close()
        event = recorder.wait_event("close")
        assert event[2:] == (1006, "Client closed underlying TCP connection")
    assert len(closes(recorder)) == 1


def test_server_close_sends_code_waits_for_reply_and_reports_it() -> None:
    def on_data(rec: Recorder, client_id: int, message: object) -> None:
        rec.endpoint.close(client_id, 4242, "kicked")

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(0x1, b"kick me")
        assert client.recv_close() == (4242, "kicked")
        # The server waits for our close before closing TCP.
        assert "close" not in recorder.kinds()
        client.send_frame(0x8, (4242).to_bytes(2, "big") + b"kicked")
        assert client.recv_until_eof() == b""
        event = recorder.wait_event("close")
        assert event[2:] == (4242, "kicked")
    assert len(closes(recorder)) == 1


def test_server_close_gives_up_after_close_period() -> None:
    recorder = Recorder(on_data=lambda rec, cid, msg: rec.endpoint.close(cid))
    with serve(recorder, close_period=0.3) as server, RawClient(server.port) as client:
        client.send_frame(0x1, b"x")
        assert client.recv_close() == (1000, "")
        # We never answer; the server closes TCP after close_period.
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2:] == (1000, "")


@pytest.mark.parametrize(
    ("frame_args", "code"),
    [
        ((0x1, b"unmasked"), 1002),
        ((0x3, b"reserved opcode"), 1002),
        ((0x0, b"stray continuation"), 1002),
        ((0x9, b"p" * 126), 1002),
        ((0x1, b"\xff\xfe invalid utf-8"), 1007),
    ],
    ids=["unmasked", "reserved-opcode", "stray-continuation", "long-ping", "invalid-utf8"],
)
def test_protocol_errors_close_with_their_code(frame_args: tuple[int, bytes], code: int) -> None:
    opcode, payload = frame_args
    recorder = Recorder()
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(opcode, payload, masked=payload != b"unmasked")
        assert client.recv_close()[0] == code
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2] == code
    assert "data" not in recorder.kinds()
    assert len(closes(recorder)) == 1


def test_oversize_message_is_1009_before_the_payload_arrives() -> None:
    recorder = Recorder()
    with serve(recorder, max_message_size=1000) as server, RawClient(server.port) as client:
        # Only the header of a 5000-byte frame: the limit is decided from it.
        client.send(b"\x81\xfe" + (5000).to_bytes(2, "big") + b"abcd")
        assert client.recv_close() == (1009, "Received payload exceeds maximum allowable size")
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2:] == (1009, "Received payload exceeds maximum allowable size")


def test_oversize_message_across_fragments_is_1009() -> None:
    recorder = Recorder()
    with serve(recorder, max_message_size=1000) as server, RawClient(server.port) as client:
        client.send_frame(0x1, b"a" * 600, fin=False)
        client.send_frame(0x0, b"a" * 600, fin=True)
        assert client.recv_close()[0] == 1009
        assert recorder.wait_event("close")[2] == 1009


def test_binary_under_text_only_is_1003() -> None:
    recorder = Recorder()
    with serve(recorder, text_only=True) as server, RawClient(server.port) as client:
        client.send_frame(0x2, b"\x00\x01")
        assert client.recv_close() == (1003, "BINARY opcodes (0x02) not accepted")
        assert recorder.wait_event("close")[2] == 1003


@pytest.mark.parametrize("where", ["on_open", "on_data"])
def test_handler_exception_closes_1011(where: str, caplog: pytest.LogCaptureFixture) -> None:
    class Failing(Recorder):
        def on_open(self, client_id: int, handshake_data: object) -> None:
            super().on_open(client_id, handshake_data)
            if where == "on_open":
                raise RuntimeError("boom in on_open")

        def on_data(self, client_id: int, message: object) -> None:
            raise RuntimeError("boom in on_data")

    recorder = Failing()
    with serve(recorder) as server, connect(url(server)) as ws:
        if where == "on_data":
            ws.send("trigger")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=PROMPTLY)
        assert ws.protocol.close_rcvd is not None
        assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (1011, "Internal server error, aborting")
        assert recorder.wait_event("close")[2] == 1011
    assert f"boom in {where}" in caplog.text


def test_shutdown_closes_clients_with_1001_after_on_stop() -> None:
    order: list[str] = []

    class Stopping(Recorder):
        def on_stop(self) -> None:
            order.append("on_stop")
            super().on_stop()

    recorder = Stopping()
    server_cm = serve(recorder)
    server = server_cm.__enter__()
    with connect(url(server)) as ws:
        recorder.wait_event("open")
        server_cm.__exit__(None, None, None)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=PROMPTLY)
        assert ws.protocol.close_rcvd is not None
        assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (1001, "Server shutting down")
    kinds = recorder.kinds()
    assert kinds.index("stop") < kinds.index("close")
    assert recorder.wait_event("close")[2] == 1001


def test_invalid_peer_close_code_is_1002() -> None:
    recorder = Recorder()
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(0x8, (1005).to_bytes(2, "big"))
        assert client.recv_close() == (1002, "Invalid close code")
        assert recorder.wait_event("close")[2] == 1002
