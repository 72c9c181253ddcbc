"""What a client's thread allocates to read, and what it holds while it waits.

With a thread per client, each thread's reads shape the heap: a 64 KiB
``recv()`` per read, held while the thread waits and then shrunk to what came,
fragmented glibc's heap until RSS grew by over 1 GiB in a soak of 1,000
clients (benchmarks/soak.py). These tests pin down the allocation pattern that
replaced it, from inside the client's thread (a recording transport), so
nothing here depends on timing:

* reads go into one reusable buffer per client, except the rest of a frame
  known to be larger, which is read straight into one buffer of the frame's
  size, with requests never past the frame's end;
* while the thread waits for the next message, nothing of the last one (the
  data handed to ``on_data``, the frame's bytes) is still referenced by it.
"""

from __future__ import annotations

import gc
import socket
import sys
import threading
import weakref
from types import FrameType
from typing import Any

import pytest
from websockets.sync.client import connect
from werkzeug.wrappers import Request as WerkzeugRequest

import syncaerys.gateway
from syncaerys import Message
from syncaerys.client.connection import BUFFER_SIZE
from syncaerys.client.connection import Connection
from syncaerys.client.transport import PlainTransport
from syncaerys.client.transport import Transport
from syncaerys.compiled import compiled_modules
from syncaerys.protocol.handshake import Accept
from syncaerys.protocol.parser import Frame
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import serve
from tests.utils import url
from tests.utils import wait_until

OP_BINARY = 0x2
LARGE = 1 << 20


class RecordingTransport(PlainTransport):
    """A plain transport that records its reads and runs ``before_read`` in the reading thread."""

    def __init__(self, sock: socket.socket, before_read: Any = None) -> None:
        super().__init__(sock)
        self.reads: list[tuple[str, int, int]] = []  # (method, size asked, size got)
        self.buffers: set[int] = set()
        self._before_read = before_read

    def recv(self, size: int) -> bytes:
        if self._before_read is not None:
            self._before_read()
        data = super().recv(size)
        self.reads.append(("recv", size, len(data)))
        return data

    def recv_into(self, buffer: memoryview) -> int:
        if self._before_read is not None:
            self._before_read()
        self.buffers.add(id(buffer.obj))
        count = super().recv_into(buffer)
        self.reads.append(("recv_into", len(buffer), count))
        return count


@pytest.fixture
def transports(monkeypatch: pytest.MonkeyPatch) -> list[RecordingTransport]:
    """Every transport the gateway creates from now on, recording."""
    created: list[RecordingTransport] = []

    def transport_for(sock: socket.socket) -> Transport:
        transport = RecordingTransport(sock)
        created.append(transport)
        return transport

    monkeypatch.setattr(syncaerys.gateway, "transport_for", transport_for)
    return created


def test_small_messages_are_read_into_one_reusable_buffer(transports: list[RecordingTransport]) -> None:
    recorder = Recorder()
    with serve(recorder, heartbeat_period=None) as server, connect(url(server), open_timeout=PROMPTLY) as ws:
        for number in range(50):
            ws.send(f"message {number} " + "x" * 300)
            assert str(ws.recv(timeout=PROMPTLY)).startswith(f"message {number} ")
        ws.close()
        recorder.wait_event("close")
    (transport,) = transports
    assert {method for method, _, _ in transport.reads} == {"recv_into"}
    assert {asked for _, asked, _ in transport.reads} == {BUFFER_SIZE}
    assert len(transport.buffers) == 1


def test_a_large_frame_is_read_into_one_buffer_up_to_its_end(transports: list[RecordingTransport]) -> None:
    payload = bytes(range(256)) * (LARGE // 256)
    frame = client_frame(OP_BINARY, payload)
    recorder = Recorder(on_data=lambda recorder, client_id, message: recorder.record("data", len(message.result())))
    limits = {"max_message_size": None, "max_frame_size": None, "max_bytes_per_minute": None}
    with serve(recorder, heartbeat_period=None, **limits) as server:
        client = RawClient(server.port)
        # The frame is followed by a small one at once: reads must not run past
        # the large frame's end even when more is there.
        client.send(frame + client_frame(OP_BINARY, b"after"))
        recorder.wait_for(lambda events: [e for e in events if e[0] == "data"] == [("data", LARGE), ("data", 5)])
        client.sock.close()
        recorder.wait_event("close")
    (transport,) = transports
    assert {method for method, _, _ in transport.reads} == {"recv_into"}
    read = 0
    direct = []
    for _, asked, got in transport.reads:
        if asked != BUFFER_SIZE:
            # Into the frame's own buffer: exactly the rest of the frame.
            assert asked == len(frame) - read
            direct.append(got)
        read += got
    assert sum(direct) > LARGE // 2
    # The reusable buffer and one buffer of the large frame's size, nothing else.
    assert len(transport.buffers) == 2


def _values_held_by(frame: FrameType | None) -> list[Any]:
    """The local variables of ``frame`` and of every frame below it."""
    values: list[Any] = []
    while frame is not None:
        values += frame.f_locals.values()
        frame = frame.f_back
    return values


@pytest.mark.skipif(
    bool(compiled_modules()),
    reason="it inspects the client thread's Python frames, which compiled modules do not have (the sources have)",
)
def test_nothing_of_the_last_message_is_held_while_waiting_for_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delivered: list[bytes] = []
    findings: list[str] = []
    checks = 0

    def holds_last_message(value: Any) -> bool:
        last = delivered[-1]
        if value is last:
            return True
        if isinstance(value, Frame):
            return value.data is last
        if isinstance(value, Message):
            return any(chunk is last for chunk in value._chunks)
        return False

    def before_read() -> None:
        # Runs in the client's thread, just before it blocks in a read.
        nonlocal checks
        if not delivered:
            return
        checks += 1
        stack = _values_held_by(sys._getframe(1))
        findings.extend(f"a local {type(value).__name__}" for value in stack if holds_last_message(value))
        # The parser must not hold the large frame it has finished with either.
        # White-box: the parser inside the session of this client.
        parser = next(value for value in stack if isinstance(value, Connection)).session._parser
        for name in type(parser).__slots__:
            value = getattr(parser, name)
            if isinstance(value, (bytes, bytearray)) and len(value) >= LARGE:
                findings.append(f"the parser's {name}, {len(value)} bytes")

    def transport_for(sock: socket.socket) -> Transport:
        return RecordingTransport(sock, before_read)

    monkeypatch.setattr(syncaerys.gateway, "transport_for", transport_for)

    def on_data(recorder: Recorder, client_id: int, message: Message) -> None:
        data = message.result()
        assert isinstance(data, bytes)
        delivered.append(data)
        recorder.record("data", len(data))

    recorder = Recorder(on_data=on_data)
    limits = {"max_message_size": None, "max_frame_size": None, "max_bytes_per_minute": None}
    with serve(recorder, heartbeat_period=None, **limits) as server:
        client = RawClient(server.port)
        client.send(client_frame(OP_BINARY, b"\x01" * LARGE))
        recorder.wait_for(lambda events: ("data", LARGE) in events)
        # The thread reads again (and is checked) before it can see this.
        client.send(client_frame(OP_BINARY, b"\x02" * 10))
        recorder.wait_for(lambda events: ("data", 10) in events)
        client.sock.close()
        recorder.wait_event("close")
    assert checks >= 1
    assert findings == []


def test_an_idle_clients_thread_holds_nothing_of_its_handshake_but_the_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The request's frames stay on the client's thread for its whole life (docs/benchmarks.md,
    # "Many clients"): the accept step's answer (the 101's bytes) and werkzeug's Request
    # (which werkzeug would store in the environ) must not be kept there.
    findings: list[str] = []
    checks = 0

    def before_read() -> None:
        nonlocal checks
        checks += 1
        for value in _values_held_by(sys._getframe(1)):
            if isinstance(value, Accept):
                findings.append("the accept step's answer")
            if isinstance(value, WerkzeugRequest):
                findings.append("a werkzeug Request")
            if isinstance(value, dict) and "werkzeug.request" in value:
                findings.append("a werkzeug Request in the environ")

    monkeypatch.setattr(syncaerys.gateway, "transport_for", lambda sock: RecordingTransport(sock, before_read))
    recorder = Recorder()
    with serve(recorder, heartbeat_period=None) as server, connect(url(server), open_timeout=PROMPTLY) as ws:
        ws.send("hello")
        assert ws.recv(timeout=PROMPTLY) == "hello"
        ws.close()
        recorder.wait_event("close")
    assert checks >= 1
    assert sorted(set(findings)) == []


def test_nothing_of_the_upgrade_request_outlives_the_handshake_under_syncaerys_server() -> None:
    # The client is handed to a thread of its own once its 101 is written (serving/handoff.py):
    # werkzeug's handler, the environ and the request's streams go then, not when the client
    # leaves, and the client's thread never had them on its stack.
    streams: list[weakref.ref[Any]] = []
    threads: list[str] = []

    def keep_track(request: Any, response: Any) -> None:
        streams.append(weakref.ref(request.environ["wsgi.input"]))
        threads.append(threading.current_thread().name)

    def on_data(recorder: Recorder, client_id: int, message: Message) -> None:
        threads.append(threading.current_thread().name)
        recorder.endpoint.send(message.result(), client_id)

    recorder = Recorder(on_data=on_data, handshake=keep_track)
    with serve(recorder, heartbeat_period=None) as server, connect(url(server), open_timeout=PROMPTLY) as ws:
        ws.send("hello")
        assert ws.recv(timeout=PROMPTLY) == "hello"

        def request_gone() -> bool:
            gc.collect()  # werkzeug's handler and its streams refer to each other
            return streams[0]() is None

        wait_until(request_gone)
        ws.send("still served")
        assert ws.recv(timeout=PROMPTLY) == "still served"
    handshake_thread, *client_threads = threads
    assert client_threads == ["syncaerys-client"] * 2 and handshake_thread != "syncaerys-client"
