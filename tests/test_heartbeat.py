"""Heartbeat pings, the unanswered-ping limit, and inbound rate limits (docs/reference/options.md)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from websockets.sync.client import connect

from syncaerys import Message
from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import serve
from tests.utils import url
from tests.utils import wait_until

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def client_id_of(recorder: Recorder) -> int:
    client_id: int = recorder.wait_event("open")[1]
    return client_id


def close_events(recorder: Recorder) -> list[tuple[Any, ...]]:
    return [e for e in recorder.events if e[0] == "close"]


# -- the unanswered-ping limit


def test_silent_peer_gets_numbered_pings_then_1008() -> None:
    recorder = Recorder()
    with (
        serve(recorder, heartbeat_period=0.1, queued_ping_limit=3) as server,
        RawClient(server.port) as client,
    ):
        assert client.status == 101
        frames = [client.recv_frame() for _ in range(3)]
        assert frames == [(OP_PING, True, b"1"), (OP_PING, True, b"2"), (OP_PING, True, b"3")]
        # No fourth ping: the next frame is the close.
        opcode, fin, payload = client.recv_frame()
        assert (opcode, fin) == (OP_CLOSE, True), (opcode, payload)
        assert (int.from_bytes(payload[:2], "big"), payload[2:].decode()) == (1008, "Exceeded unanswered PING limit")
        # Finish the closing handshake; the server then closes TCP.
        client.send_frame(OP_CLOSE, payload)
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2:] == (1008, "Exceeded unanswered PING limit")
    assert len(close_events(recorder)) == 1


def test_peer_answering_by_hand_is_never_closed_and_info_counts_pings() -> None:
    recorder = Recorder()
    with (
        serve(recorder, heartbeat_period=0.1, queued_ping_limit=3) as server,
        RawClient(server.port) as client,
    ):
        client_id = client_id_of(recorder)
        # Six periods, twice the limit: each ping is answered, so none is "unanswered".
        for number in range(1, 7):
            opcode, _, payload = client.recv_frame()
            assert (opcode, payload) == (OP_PING, str(number).encode())
            client.send_frame(OP_PONG, payload)
        # An echo proves the connection is open and that the pongs before it were read.
        client.send_frame(OP_TEXT, b"still here")
        while True:
            opcode, _, payload = client.recv_frame()
            if opcode == OP_PING:
                client.send_frame(OP_PONG, payload)
                continue
            assert (opcode, payload) == (OP_TEXT, b"still here")
            break
        info = recorder.endpoint.get_info(client_id)
        assert info is not None
        assert info.pings_sent >= 6
        assert info.pongs_received >= 6
        assert info.latency is not None
        assert 0 <= info.latency < PROMPTLY
        assert client_id in recorder.endpoint.get_clients()
        assert "close" not in recorder.kinds()


def test_websockets_client_answers_pings_and_stays_open() -> None:
    recorder = Recorder()
    with (
        serve(recorder, heartbeat_period=0.1, queued_ping_limit=3) as server,
        connect(url(server), ping_interval=None) as ws,
    ):
        client_id = client_id_of(recorder)
        # Ten periods of silence from the application: nothing arrives, not even a close.
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.0 * SECOND)

        def answered() -> bool:
            info = recorder.endpoint.get_info(client_id)
            return info is not None and info.pongs_received >= 4

        wait_until(answered)
        info = recorder.endpoint.get_info(client_id)
        assert info is not None
        assert info.pings_sent >= 4
        assert info.pings_sent - info.pongs_received < 3
        assert info.latency is not None
        assert 0 <= info.latency < PROMPTLY
        ws.send("ping me")
        assert ws.recv(timeout=PROMPTLY) == "ping me"
        assert "close" not in recorder.kinds()


def test_busy_handler_is_not_mistaken_for_a_dead_peer() -> None:
    release = threading.Event()

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        data = message.result()
        rec.record("data", client_id, data)
        if data == "block":
            # Blocks far longer than queued_ping_limit heartbeat periods.
            rec.record("blocked", client_id, release.wait(4 * PROMPTLY))
        rec.endpoint.send(data, client_id)

    recorder = Recorder(on_data=on_data)
    with (
        serve(recorder, heartbeat_period=0.1, queued_ping_limit=3) as server,
        connect(url(server), ping_interval=None) as ws,
    ):
        client_id = client_id_of(recorder)
        ws.send("block")
        recorder.wait_event("data")
        # About ten heartbeat periods while the handler is busy: no close arrives.
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.0 * SECOND)

        # The heartbeat kept pinging while the client's thread was blocked.
        def pinged() -> bool:
            info = recorder.endpoint.get_info(client_id)
            return info is not None and info.pings_sent >= 3

        wait_until(pinged)
        assert client_id in recorder.endpoint.get_clients()
        release.set()
        assert ws.recv(timeout=PROMPTLY) == "block"
        assert recorder.wait_event("blocked")[2] is True
        ws.send("after")
        assert ws.recv(timeout=PROMPTLY) == "after"
        assert client_id in recorder.endpoint.get_clients()
        assert "close" not in recorder.kinds()


# -- inbound rate limits pause reading, never close


def recv_text_answering_pings(client: RawClient) -> bytes:
    """The next text message's payload; pings on the way are answered, as clients do."""
    while True:
        opcode, fin, payload = client.recv_frame()
        if opcode == OP_PING:
            client.send_frame(OP_PONG, payload)
            continue
        assert (opcode, fin) == (OP_TEXT, True), (opcode, payload)
        return payload


def test_frame_rate_limit_delays_but_delivers_everything() -> None:
    recorder = Recorder()
    count = 60
    with (
        serve(recorder, max_frames_per_second=20, heartbeat_period=0.1) as server,
        RawClient(server.port) as client,
    ):
        client_id = client_id_of(recorder)
        # 60 small messages at once: one write, so they reach the server together.
        client.send(b"".join(client_frame(OP_TEXT, f"m{number}".encode()) for number in range(count)))
        arrivals: list[float] = []
        for number in range(count):
            assert recv_text_answering_pings(client) == f"m{number}".encode()
            arrivals.append(time.monotonic())
        elapsed = arrivals[-1] - arrivals[0]
        # A burst of 20, then 20 frames a second: about 2 s for the other 40.
        assert elapsed >= 1.0, f"{count} frames echoed in {elapsed:.3f}s despite max_frames_per_second=20"
        client.send_frame(OP_TEXT, b"after")
        assert recv_text_answering_pings(client) == b"after"
        assert client_id in recorder.endpoint.get_clients()
        client.send_frame(OP_CLOSE, (1000).to_bytes(2, "big"))
        assert client.recv_close() == (1000, "")
        assert recorder.wait_event("close")[2:] == (1000, "")
    assert len(close_events(recorder)) == 1


def test_byte_rate_limit_delays_but_delivers_everything() -> None:
    recorder = Recorder()
    rate = 64 * 1024  # bytes per second
    # Frames larger than the connection's 4 KiB read buffer: the rest of each is
    # read in one request of ~56 KiB, so that reading pauses for most of a second
    # at a time once the budget is spent (longer than heartbeat_period).
    size = 60 * 1024
    budget = 60 * rate
    # Past the burst budget by 2.5 s of refill (each frame is 8 bytes of header + 60 KiB).
    count = (budget + 5 * rate // 2) // (size + 8) + 1
    payloads = [number.to_bytes(4, "big") * (size // 4) for number in range(count)]
    with (
        serve(recorder, max_bytes_per_minute=budget, max_frames_per_second=None, heartbeat_period=0.1) as server,
        connect(url(server), ping_interval=None) as ws,
        ThreadPoolExecutor(1) as pool,
    ):
        client_id = client_id_of(recorder)

        def send_all() -> None:
            for payload in payloads:
                ws.send(payload)

        sender = pool.submit(send_all)
        arrivals: list[float] = []
        for payload in payloads:
            assert ws.recv(timeout=PROMPTLY) == payload
            arrivals.append(time.monotonic())
        sender.result(timeout=PROMPTLY)
        elapsed = arrivals[-1] - arrivals[0]
        # Reading resumes only as the budget refills; whatever one read may overshoot
        # (under 64 KiB = 1 s of refill here), at least ~1.5 s of the excess must be waited out.
        assert elapsed >= 1.0, f"{count * size} bytes echoed in {elapsed:.3f}s over a {budget}-byte budget"
        ws.send("after")
        assert ws.recv(timeout=PROMPTLY) == "after"
        info = recorder.endpoint.get_info(client_id)
        assert info is not None
        # The heartbeat ran while reading was paused and did not close the client.
        assert info.pings_sent >= 1
        assert client_id in recorder.endpoint.get_clients()
    assert [e[2] for e in close_events(recorder)] == [1000]
