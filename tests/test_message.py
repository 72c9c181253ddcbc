"""Message streaming (docs/reference/api.md): chunks as the message arrives, timeouts, disconnects, draining, order."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from websockets.sync.client import connect

from syncaerys import ClientException
from syncaerys import Message
from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import serve
from tests.utils import url

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9


def send_fragments(client: RawClient, opcode: int, fragments: list[bytes]) -> None:
    """Send ``fragments`` as one message: ``opcode`` first, continuations after."""
    last = len(fragments) - 1
    for index, fragment in enumerate(fragments):
        client.send_frame(opcode if index == 0 else OP_CONT, fragment, fin=index == last)


def test_read_returns_each_chunk_before_the_next_fragment_is_sent() -> None:
    fragments = [f"fragment {i} of five;".encode() for i in range(5)]
    chunk_read = [threading.Event() for _ in fragments]
    chunks: list[Any] = []

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        for event in chunk_read:
            chunks.append(message.read(timeout=PROMPTLY))
            event.set()
        rec.record("end", message.read(timeout=PROMPTLY), message.is_binary)

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        for index, fragment in enumerate(fragments):
            # Fragment k+1 is only sent once the handler has read chunk k: a
            # read() that waited for the whole message would never return.
            client.send_frame(OP_TEXT if index == 0 else OP_CONT, fragment, fin=index == len(fragments) - 1)
            assert chunk_read[index].wait(PROMPTLY), f"chunk {index} was not read while the message was arriving"
            assert chunks[index] == fragment.decode()
        assert recorder.wait_event("end") == ("end", None, False)
    assert chunks == [fragment.decode() for fragment in fragments]


def test_iteration_yields_the_chunks_of_a_binary_message() -> None:
    fragments = [bytes([i]) * (100 + i) for i in range(4)]

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        rec.record("chunks", list(message), message.is_binary)
        # The iteration consumed everything: the message is at its end.
        rec.record("after", message.read(timeout=PROMPTLY))

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        send_fragments(client, OP_BINARY, fragments)
        _, chunks, is_binary = recorder.wait_event("chunks")
        assert recorder.wait_event("after") == ("after", None)
    assert is_binary is True
    assert chunks == fragments
    assert all(isinstance(chunk, bytes) for chunk in chunks)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_result_after_partial_reads_returns_only_the_rest(opcode: int) -> None:
    fragments = [b"alpha-", b"beta-", b"gamma-", b"delta"]
    both_read = threading.Event()

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        first = message.read(timeout=PROMPTLY)
        second = message.read(timeout=PROMPTLY)
        both_read.set()
        rest = message.result(timeout=PROMPTLY)
        rec.record("parts", message.is_binary, first, second, rest, message.result(timeout=PROMPTLY))

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(opcode, fragments[0], fin=False)
        client.send_frame(OP_CONT, fragments[1], fin=False)
        assert both_read.wait(PROMPTLY)
        client.send_frame(OP_CONT, fragments[2], fin=False)
        client.send_frame(OP_CONT, fragments[3], fin=True)
        _, is_binary, first, second, rest, again = recorder.wait_event("parts")
    if opcode == OP_BINARY:
        assert (is_binary, first, second, rest) == (True, b"alpha-", b"beta-", b"gamma-delta")
    else:
        assert (is_binary, first, second, rest) == (False, "alpha-", "beta-", "gamma-delta")
    # result() is idempotent: the same rest again.
    assert again == rest


@pytest.mark.parametrize("how", ["result", "read"])
def test_timeout_raises_timeout_error_and_leaves_the_message_readable(how: str) -> None:
    timeout = 0.3 * SECOND

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        first = message.read(timeout=PROMPTLY) if how == "read" else None
        started = time.monotonic()
        try:
            if how == "read":
                message.read(timeout=timeout)
            else:
                message.result(timeout=timeout)
        except TimeoutError:
            rec.record("timeout", time.monotonic() - started)
        else:
            rec.record("no timeout")
            return
        rec.record("rest", first, message.result(timeout=PROMPTLY))

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_TEXT, b"first", fin=False)
        # Half of the second frame: the timeout expires in the middle of it.
        second = client_frame(OP_CONT, b"-second!", fin=False)
        client.send(second[:5])
        event = recorder.wait_for(lambda events: next((e for e in events if e[0] in ("timeout", "no timeout")), None))
        assert event[0] == "timeout"
        assert event[1] >= timeout * 0.9
        client.send(second[5:])
        client.send_frame(OP_CONT, b"-third", fin=True)
        _, first, rest = recorder.wait_event("rest")
    if how == "read":
        assert (first, rest) == ("first", "-second!-third")
    else:
        assert rest == "first-second!-third"


def reading_handler(how: str) -> Recorder:
    """A recorder whose on_data reads the whole message with ``result()`` or ``read()``.

    It records "reading" first, then ("raised", error, chunks) or ("returned", chunks).
    """

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        chunks = []
        rec.record("reading", client_id)
        try:
            if how == "read":
                while True:
                    chunk = message.read(timeout=PROMPTLY)
                    if chunk is None:
                        break
                    chunks.append(chunk)
            else:
                chunks.append(message.result(timeout=PROMPTLY))
        except Exception as error:
            rec.record("raised", error, chunks)
        else:
            rec.record("returned", chunks)

    return Recorder(on_data=on_data)


def check_raised_client_exception(recorder: Recorder, how: str) -> None:
    outcome = recorder.wait_for(lambda events: next((e for e in events if e[0] in ("raised", "returned")), None))
    assert outcome[0] == "raised", f"the message did not fail after the disconnect: {outcome!r}"
    error = outcome[1]
    assert isinstance(error, ClientException), f"{error!r} is not a ClientException"
    assert not isinstance(error, OSError)
    if how == "read":
        assert outcome[2] == ["the beginning"]


@pytest.mark.parametrize("how", ["result", "read"])
@pytest.mark.parametrize("cause", ["tcp-drop", "protocol-error", "too-large", "endpoint-close"])
def test_disconnect_mid_message_raises_client_exception(how: str, cause: str) -> None:
    recorder = reading_handler(how)
    expected_code = {"tcp-drop": 1006, "protocol-error": 1002, "too-large": 1009, "endpoint-close": 4002}[cause]
    with serve(recorder, max_message_size=1000) as server, RawClient(server.port) as client:
        client.send_frame(OP_TEXT, b"the beginning", fin=False)
        _, client_id = recorder.wait_event("reading")
        if cause == "tcp-drop":
            client.sock.shutdown(socket.SHUT_RDWR)
        elif cause == "protocol-error":
            client.send_frame(OP_CONT, b"unmasked", masked=False)
        elif cause == "too-large":
            client.send_frame(OP_CONT, b"x" * 2000, fin=True)
        else:
            recorder.endpoint.close(client_id, 4002, "enough")
            assert client.recv_close() == (4002, "enough")
            client.send_frame(OP_CLOSE, (4002).to_bytes(2, "big") + b"enough")
        check_raised_client_exception(recorder, how)
        close = recorder.wait_event("close")
        assert close[2] == expected_code
        if cause in ("protocol-error", "too-large"):
            assert client.recv_close()[0] == expected_code
    if cause == "tcp-drop":
        assert close[3] == "Client closed underlying TCP connection"
    assert recorder.kinds().count("close") == 1


@pytest.mark.parametrize("how", ["result", "read"])
def test_server_shutdown_mid_message_raises_client_exception(how: str) -> None:
    recorder = reading_handler(how)
    with serve(recorder, close_period=0.5) as server:
        client = RawClient(server.port)
        client.send_frame(OP_TEXT, b"the beginning", fin=False)
        recorder.wait_event("reading")
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        try:
            assert client.recv_close() == (1001, "Server shutting down")
            client.send_frame(OP_CLOSE, (1001).to_bytes(2, "big"))
            check_raised_client_exception(recorder, how)
            assert recorder.wait_event("close")[2] == 1001
        finally:
            stopper.join(PROMPTLY)
            client.close()
    assert recorder.kinds().count("close") == 1


@pytest.mark.parametrize("how", ["result", "read"])
def test_empty_messages(how: str) -> None:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        value = message.result(timeout=PROMPTLY) if how == "result" else message.read(timeout=PROMPTLY)
        rec.record("data", message.is_binary, value)

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, connect(url(server)) as ws:
        ws.send("")
        ws.send(b"")
        ws.send("not empty")
        recorder.wait_for(lambda events: len([e for e in events if e[0] == "data"]) == 3)
    data = [e[1:] for e in recorder.events if e[0] == "data"]
    if how == "result":
        assert data == [(False, ""), (True, b""), (False, "not empty")]
        assert type(data[0][1]) is str
        assert type(data[1][1]) is bytes
    else:
        # read() gives None at the end of a message; an empty one ends at once.
        assert data == [(False, None), (True, None), (False, "not empty")]


def test_text_chunks_never_split_a_utf8_character() -> None:
    text = "aé€𝄞z"
    # Cuts inside the 2-, 3- and 4-byte characters; two fragments hold no whole character.
    fragments = [b"a\xc3", b"\xa9\xe2", b"\x82", b"\xac\xf0\x9d", b"\x84", b"\x9ez"]
    assert b"".join(fragments) == text.encode()

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        rec.record("chunks", list(message))

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        send_fragments(client, OP_TEXT, fragments)
        _, chunks = recorder.wait_event("chunks")
    assert all(isinstance(chunk, str) for chunk in chunks)
    assert "".join(chunks) == text
    assert "\ufffd" not in "".join(chunks)
    assert chunks == ["a", "é", "€", "𝄞z"]


def test_text_result_reassembles_characters_split_across_fragments() -> None:
    text = "ü" * 10 + "漢字" * 5 + "🎉" * 3
    encoded = text.encode()
    fragments = [encoded[i : i + 3] for i in range(0, len(encoded), 3)]
    recorder = Recorder()
    with serve(recorder) as server, RawClient(server.port) as client:
        send_fragments(client, OP_TEXT, fragments)
        assert client.recv_frame() == (OP_TEXT, True, encoded)
    assert recorder.wait_event("data")[2] == text


@pytest.mark.parametrize("reads", [0, 1])
def test_unread_rest_is_drained_and_the_next_message_is_its_own(reads: int) -> None:
    returned = threading.Event()
    messages: list[Message] = []

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        messages.append(message)
        if len(messages) == 1:
            taken = [message.read(timeout=PROMPTLY) for _ in range(reads)]
            rec.record("first", message.is_binary, taken)
            returned.set()
            return  # the rest of message 1 is left unread
        data = message.result(timeout=PROMPTLY)
        rec.record("second", message.is_binary, data)
        rec.endpoint.send(data, client_id)

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_BINARY, b"\x01" * 300, fin=False)
        client.send_frame(OP_CONT, b"\x02" * 300, fin=False)
        assert returned.wait(PROMPTLY)
        # The handler has given up on message 1; its last fragments arrive now.
        client.send_frame(OP_CONT, b"\x03" * 300, fin=False)
        client.send_frame(OP_CONT, b"\x04" * 300, fin=True)
        client.send_frame(OP_TEXT, b"message two")
        assert client.recv_frame() == (OP_TEXT, True, b"message two")
        assert recorder.wait_event("second") == ("second", False, "message two")
    first = recorder.wait_event("first")
    assert first == ("first", True, [b"\x01" * 300][:reads])
    assert len(messages) == 2
    assert recorder.kinds().count("first") == 1


def test_messages_of_one_client_are_handled_one_at_a_time_in_arrival_order() -> None:
    count = 20
    release = threading.Event()
    lock = threading.Lock()
    active = [0]
    calls: list[tuple[Any, int, int]] = []

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        with lock:
            active[0] += 1
            overlapping = active[0]
        try:
            data = message.result(timeout=PROMPTLY)
            calls.append((data, threading.get_ident(), overlapping))
            if data == "m0":
                rec.record("blocked")
                # Hold message 0 while the client sends all the others.
                release.wait(PROMPTLY)
            rec.endpoint.send(data, client_id)
        finally:
            with lock:
                active[0] -= 1

    recorder = Recorder(on_data=on_data)
    expected: list[Any] = []
    for i in range(count):
        expected.append(f"m{i}" if i % 2 == 0 else f"m{i}".encode() * (i * 500))
    with serve(recorder) as server, connect(url(server)) as ws:
        ws.send(expected[0])
        recorder.wait_event("blocked")
        for message in expected[1:]:
            ws.send(message)
        release.set()
        echoes = [ws.recv(timeout=PROMPTLY) for _ in range(count)]
    assert echoes == expected
    assert [data for data, _, _ in calls] == expected
    assert {ident for _, ident, _ in calls} == {calls[0][1]}, "one client's messages ran on several threads"
    assert max(overlap for _, _, overlap in calls) == 1, "on_data calls of one client overlapped"


def test_two_clients_messages_are_handled_concurrently() -> None:
    # One client's slow handler does not hold another client's messages.
    release = threading.Event()

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        data = message.result(timeout=PROMPTLY)
        if data == "slow":
            rec.record("slow started")
            # Longer than the fast client waits: only the test's release ends it in time.
            rec.record("slow released", release.wait(3 * PROMPTLY))
        rec.record("data", client_id, data)
        rec.endpoint.send(data, client_id)

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, connect(url(server)) as slow, connect(url(server)) as fast:
        slow.send("slow")
        recorder.wait_event("slow started")
        fast.send("fast")
        assert fast.recv(timeout=PROMPTLY) == "fast"
        release.set()
        assert slow.recv(timeout=PROMPTLY) == "slow"
        assert recorder.wait_event("slow released") == ("slow released", True)
    data = [e[2] for e in recorder.events if e[0] == "data"]
    assert data == ["fast", "slow"]


def test_control_frames_inside_a_message_do_not_become_chunks() -> None:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        rec.record("chunks", list(message))

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_TEXT, b"one ", fin=False)
        client.send_frame(OP_PING, b"ping!")
        client.send_frame(OP_CONT, b"two", fin=True)
        assert client.recv_frame() == (0xA, True, b"ping!")
        assert recorder.wait_event("chunks") == ("chunks", ["one ", "two"])
        client.send_frame(OP_CLOSE, (1000).to_bytes(2, "big"))
        assert client.recv_close() == (1000, "")
