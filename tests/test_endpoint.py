"""Endpoint (docs/reference/api.md): sends, futures, broadcasts, slow clients, close, fragmentation, get_info..."""

from __future__ import annotations

import itertools
import selectors
import socket
import threading
import time

import pytest
from websockets.sync.client import connect

from syncaerys import BroadcastResult
from syncaerys import ClientException
from syncaerys import ClientInfo
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import SendFuture
from syncaerys.client.connection import SEND_QUEUE_GRACE
from tests.utils import PROMPTLY
from tests.utils import SECOND
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import SmallWindowClient
from tests.utils import client_frame
from tests.utils import serve
from tests.utils import url
from tests.utils import wait_until

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

AERYS_INFO_KEYS = {
    "bytes_read",
    "bytes_sent",
    "frames_read",
    "frames_sent",
    "messages_read",
    "messages_sent",
    "connected_at",
    "closed_at",
    "close_code",
    "close_reason",
    "last_read_at",
    "last_sent_at",
    "last_data_read_at",
    "last_data_sent_at",
}


# -- helpers


def header_size(length: int) -> int:
    """The size of an unmasked frame header for a payload of ``length`` bytes."""
    if length < 126:
        return 2
    if length < 65536:
        return 4
    return 10


def wire_size(length: int, auto_frame_size: int | None = 65_527) -> int:
    """Bytes on the wire for a message of ``length`` bytes, split by ``auto_frame_size`` (docs/reference/options.md)."""
    if auto_frame_size is None or length <= auto_frame_size:
        return header_size(length) + length
    slices = -(-length // auto_frame_size)
    size = -(-length // slices)
    total = 0
    for start in range(0, length, size):
        part = min(size, length - start)
        total += header_size(part) + part
    return total


def server_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked, final server frame, as the client must receive it."""
    length = len(payload)
    if length < 126:
        head = bytes((0x80 | opcode, length))
    elif length < 65536:
        head = bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")
    return head + payload


def client_ids(recorder: Recorder, count: int) -> list[int]:
    """Wait for ``count`` opened clients; their ids in the order they opened."""
    recorder.wait_for(lambda events: len([e for e in events if e[0] == "open"]) >= count)
    opened = [e[1] for e in recorder.events if e[0] == "open"]
    return opened[:count]


def id_of(endpoint: Endpoint, sock: socket.socket) -> int:
    """The id of the client connected from ``sock``, found through its remote address."""
    host, port = sock.getsockname()[:2]
    address = f"{host}:{port}"

    def find() -> int | None:
        for client_id in endpoint.get_clients():
            info = endpoint.get_info(client_id)
            if info is not None and info.remote_address == address:
                return client_id
        return None

    found: int = wait_until(find)
    return found


class StreamChecker:
    """Reads many sockets in one thread and checks each gets exactly the expected bytes.

    Call :meth:`expect` with the frame bytes before sending them to every socket.
    """

    def __init__(self, socks: list[socket.socket]) -> None:
        self._selector = selectors.DefaultSelector()
        self._positions: dict[socket.socket, int] = {}
        for sock in socks:
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)
            self._positions[sock] = 0
        self._expected = bytearray()
        self._condition = threading.Condition()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-checker", daemon=True)
        self._thread.start()

    def expect(self, data: bytes) -> None:
        with self._condition:
            self._expected += data

    def wait_all(self, timeout: float) -> bool:
        """Wait until every socket has received everything expected so far."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                if self.errors:
                    return False
                target = len(self._expected)
                if all(position == target for position in self._positions.values()):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.05):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                except OSError as error:
                    data = b""
                    failure = f"recv failed: {error!r}"
                else:
                    failure = "EOF"
                with self._condition:
                    position = self._positions[sock]
                    if not data:
                        self.errors.append(f"{failure} from a reader after {position} bytes")
                    elif self._expected[position : position + len(data)] != data:
                        self.errors.append(f"unexpected bytes at offset {position}")
                    else:
                        self._positions[sock] = position + len(data)
                        self._condition.notify_all()
                        continue
                    self._condition.notify_all()
                self._selector.unregister(sock)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(PROMPTLY)
        self._selector.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


# -- concurrency


def concurrent_payload(thread: int, seq: int) -> str | bytes:
    fill = chr(ord("a") + (thread * 7 + seq) % 26)
    size = 100_000 if seq % 50 == 49 else 10 + (seq * 37 + thread * 101) % 3000
    body = f"{thread}:{seq}:" + fill * size
    return body if thread % 2 == 0 else body.encode()


def test_concurrent_sends_from_8_threads_arrive_whole_and_in_per_thread_order(recorder: Recorder) -> None:
    threads, per_thread = 8, 200
    futures: dict[tuple[int, int], SendFuture[int]] = {}
    errors: list[BaseException] = []
    with serve(recorder) as server, connect(url(server), max_size=None) as ws:
        (client_id,) = client_ids(recorder, 1)
        barrier = threading.Barrier(threads)

        def sender(thread: int) -> None:
            try:
                barrier.wait(PROMPTLY)
                for seq in range(per_thread):
                    futures[thread, seq] = recorder.endpoint.send(concurrent_payload(thread, seq), client_id)
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        workers = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        received = [ws.recv(timeout=PROMPTLY) for _ in range(threads * per_thread)]
        for worker in workers:
            worker.join(PROMPTLY)
        assert not errors
        sizes = {key: wire_size(len(concurrent_payload(*key))) for key in futures}
        for key, future in futures.items():
            assert future.result(PROMPTLY) == sizes[key]
        info = recorder.endpoint.get_info(client_id)
        assert info is not None
        big = threads * (per_thread // 50)
        assert (info.messages_sent, info.frames_sent) == (threads * per_thread, threads * per_thread + big)
        assert info.bytes_sent == sum(sizes.values())
        assert info.send_queue_bytes == 0
    next_seq = [0] * threads
    for message in received:
        text = message if isinstance(message, str) else message.decode()
        thread_text, seq_text, _ = text.split(":", 2)
        thread, seq = int(thread_text), int(seq_text)
        assert seq == next_seq[thread], f"thread {thread}: got {seq}, expected {next_seq[thread]}"
        assert message == concurrent_payload(thread, seq), f"message {thread}:{seq} corrupted"
        next_seq[thread] += 1
    assert next_seq == [per_thread] * threads


# -- send and its future


def test_send_future_resolves_to_the_bytes_written(recorder: Recorder) -> None:
    with serve(recorder) as server, RawClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        endpoint = recorder.endpoint
        cases: list[tuple[str | bytes, int]] = [
            ("hello", 2 + 5),
            (b"\x00" * 200, 4 + 200),
            ("é" * 100, 4 + 200),
            (b"x" * 70_000, 2 * (4 + 35_000)),
            (b"y" * 131_046, 2 * (4 + 65_523)),
        ]
        for data, expected in cases:
            future = endpoint.send(data, client_id)
            assert future.result(PROMPTLY) == expected
            assert future.done()
            payload = data.encode() if isinstance(data, str) else data
            received = b""
            while True:
                _, fin, chunk = client.recv_frame()
                received += chunk
                if fin:
                    break
            assert received == payload


def test_send_to_a_closing_client_fails_with_client_exception(recorder: Recorder) -> None:
    with serve(recorder, close_period=3.0) as server, RawClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        endpoint = recorder.endpoint
        endpoint.close(client_id, 4000, "going")
        # The client does not answer the close frame: the server is still waiting for it.
        assert client.recv_close() == (4000, "going")
        for future in (
            endpoint.send("late", client_id),
            endpoint.send(b"late", client_id),
            endpoint.send_binary("late", client_id),
        ):
            assert future.done()
            assert isinstance(future.exception(PROMPTLY), ClientException)
            with pytest.raises(ClientException):
                future.result(PROMPTLY)
        multi = endpoint.multicast("late", [client_id]).result(PROMPTLY)
        assert multi == BroadcastResult(0, (client_id,))
        # Nothing but the close reached the client.
        client.send_frame(OP_CLOSE, (4000).to_bytes(2, "big"))
        assert client.recv_until_eof() == b""
        recorder.wait_event("close")


def test_send_to_an_unknown_id_fails_naming_it(recorder: Recorder) -> None:
    # Unlike Aerys: a send that reached nobody must not look like one that worked.
    with serve(recorder):
        endpoint = recorder.endpoint
        for future in (endpoint.send("x", 987_654_321), endpoint.send_binary(b"x", 987_654_321)):
            assert future.done()
            error = future.exception(timeout=0)
            assert isinstance(error, ClientException)
            assert "987654321" in str(error)


def test_send_binary_and_accepted_types(recorder: Recorder) -> None:
    with serve(recorder) as server, connect(url(server)) as ws:
        (client_id,) = client_ids(recorder, 1)
        endpoint = recorder.endpoint
        endpoint.send("text", client_id)
        endpoint.send_binary("tëxt as binary", client_id)
        endpoint.send(bytearray(b"from a bytearray"), client_id)
        endpoint.send(memoryview(b"from a memoryview"), client_id)
        endpoint.send(memoryview(b"--sliced--")[2:-2], client_id)
        endpoint.send_binary(bytearray(b"ba"), client_id)
        endpoint.send_binary(b"raw", client_id)
        received = [ws.recv(timeout=PROMPTLY) for _ in range(7)]
    assert received == [
        "text",
        "tëxt as binary".encode(),
        b"from a bytearray",
        b"from a memoryview",
        b"sliced",
        b"ba",
        b"raw",
    ]


@pytest.mark.parametrize("bad", [42, 1.5, None, ["a"], {"a": 1}, object()], ids=repr)
def test_send_rejects_other_types_with_type_error(recorder: Recorder, bad: object) -> None:
    with serve(recorder) as server, connect(url(server)) as ws:
        (client_id,) = client_ids(recorder, 1)
        endpoint = recorder.endpoint
        with pytest.raises(TypeError):
            endpoint.send(bad, client_id)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            endpoint.send_binary(bad, client_id)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            endpoint.broadcast(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            endpoint.multicast(bad, [client_id])  # type: ignore[arg-type]
        # Nothing was sent and the client is fine.
        endpoint.send("after", client_id)
        assert ws.recv(timeout=PROMPTLY) == "after"
        assert client_id in endpoint.get_clients()


# -- broadcast and multicast


def test_broadcast_except_ids_and_multicast_counts(recorder: Recorder) -> None:
    with (
        serve(recorder) as server,
        connect(url(server)) as ws_a,
        connect(url(server)) as ws_b,
        connect(url(server)) as ws_c,
    ):
        endpoint = recorder.endpoint
        sockets = {"a": ws_a, "b": ws_b, "c": ws_c}
        wait_until(lambda: len(endpoint.get_clients()) == 3)
        ids = {name: id_of(endpoint, ws.socket) for name, ws in sockets.items()}
        assert len(set(ids.values())) == 3

        result = endpoint.broadcast("to all").result(PROMPTLY)
        assert result == BroadcastResult(3, ())

        result = endpoint.broadcast("not to a", except_ids=[ids["a"]]).result(PROMPTLY)
        assert result == BroadcastResult(2, ())
        result = endpoint.broadcast_binary("binary, not to b or c", except_ids={ids["b"], ids["c"]}).result(PROMPTLY)
        assert result == BroadcastResult(1, ())

        unknown = 987_654_321
        result = endpoint.multicast("to a, c and a stranger", [ids["a"], ids["c"], unknown]).result(PROMPTLY)
        assert result.delivered == 2
        assert result.failed == (unknown,)
        result = endpoint.multicast_binary(b"to b", [ids["b"]]).result(PROMPTLY)
        assert result == BroadcastResult(1, ())
        result = endpoint.multicast("to nobody", []).result(PROMPTLY)
        assert result == BroadcastResult(0, ())

        for ws in sockets.values():
            ws.send("end")  # echoed by the recorder after everything above
        received = {}
        for name, ws in sockets.items():
            messages = []
            while True:
                message = ws.recv(timeout=PROMPTLY)
                if message == "end":
                    break
                messages.append(message)
            received[name] = messages
    assert received["a"] == ["to all", b"binary, not to b or c", "to a, c and a stranger"]
    assert received["b"] == ["to all", "not to a", b"to b"]
    assert received["c"] == ["to all", "not to a", "to a, c and a stranger"]


def test_broadcast_skips_closing_clients_and_multicast_counts_them_failed(recorder: Recorder) -> None:
    with serve(recorder, close_period=3.0) as server, RawClient(server.port) as closing, connect(url(server)) as ws:
        endpoint = recorder.endpoint
        wait_until(lambda: len(endpoint.get_clients()) == 2)
        closing_id = id_of(endpoint, closing.sock)
        open_id = id_of(endpoint, ws.socket)
        endpoint.close(closing_id)
        assert closing.recv_close() == (1000, "")
        assert endpoint.broadcast("news").result(PROMPTLY) == BroadcastResult(1, ())
        result = endpoint.multicast("news 2", [closing_id, open_id]).result(PROMPTLY)
        assert result == BroadcastResult(1, (closing_id,))
        assert ws.recv(timeout=PROMPTLY) == "news"
        assert ws.recv(timeout=PROMPTLY) == "news 2"
        closing.send_frame(OP_CLOSE, (1000).to_bytes(2, "big"))
        assert closing.recv_until_eof() == b""


def test_slow_client_does_not_hold_a_broadcast_and_is_closed_1008(recorder: Recorder) -> None:
    others = 99
    payload_size = 60_000
    max_send_queue = 256 * 1024
    readers: list[RawClient] = []
    stuck: SmallWindowClient | None = None
    checker: StreamChecker | None = None
    with serve(recorder, max_send_queue=max_send_queue, close_period=0.5, heartbeat_period=None) as server:
        endpoint = recorder.endpoint
        try:
            stuck = SmallWindowClient(server.port)
            for _ in range(others):
                readers.append(RawClient(server.port))
            assert all(reader.buffer == b"" for reader in readers)
            wait_until(lambda: len(endpoint.get_clients()) == others + 1)
            stuck_id = id_of(endpoint, stuck.sock)
            checker = StreamChecker([reader.sock for reader in readers])

            # Fill the kernel buffers between the server and the stuck client
            # (they absorb a few MiB on loopback) until its send queue holds bytes.
            direct: list[tuple[SendFuture[int], bool]] = []
            for _ in range(200):
                future = endpoint.send(b"f" * payload_size, stuck_id)
                direct.append((future, future.done()))
                info = endpoint.get_info(stuck_id)
                assert info is not None
                if info.send_queue_bytes > 0:
                    break
            else:
                raise AssertionError("the stuck client's queue never filled")
            assert stuck_id in endpoint.get_clients(), "closed before any broadcast"

            broadcasts: list[SendFuture[BroadcastResult]] = []
            durations: list[float] = []
            rounds_while_open = 0
            after_close = 10
            # The stuck client is closed at the first send after its socket stayed full
            # for SEND_QUEUE_GRACE with the queue over the limit: rounds go on until then.
            give_up = time.monotonic() + SEND_QUEUE_GRACE + 10 * PROMPTLY
            for round_number in itertools.count():
                if time.monotonic() > give_up:
                    break
                if stuck_id not in endpoint.get_clients():
                    after_close -= 1
                    if after_close == 0:
                        break
                else:
                    rounds_while_open += 1
                    future = endpoint.send(b"d" * 1000, stuck_id)
                    direct.append((future, future.done()))
                payload = (f"{round_number:06d}" * (payload_size // 6)).encode()
                checker.expect(server_frame(OP_BINARY, payload))
                started = time.monotonic()
                broadcasts.append(endpoint.broadcast(payload))
                durations.append(time.monotonic() - started)
                assert checker.wait_all(PROMPTLY), f"round {round_number}: {checker.errors[:3]}"
            if after_close:
                raise AssertionError("the stuck client was never closed")
            assert rounds_while_open >= 3

            close = recorder.wait_for(lambda events: next((e for e in events if e[0] == "close"), None))
            assert close[1:] == (stuck_id, 1008, "Send queue limit exceeded")

            # Every broadcast completed; none waited for the stuck client, which
            # is counted failed where its copy was dropped.
            results = [future.result(PROMPTLY) for future in broadcasts]
            assert all(result.delivered >= others for result in results)
            assert all(set(result.failed) <= {stuck_id} for result in results)
            assert any(result.failed == (stuck_id,) for result in results[:rounds_while_open])
            assert all(result == BroadcastResult(others, ()) for result in results[rounds_while_open:])
            # Pending sends to the stuck client failed with ClientException.
            pending = [future for future, done in direct if not done]
            assert pending
            for future in pending:
                assert future.done()
            assert any(isinstance(future.exception(0), ClientException) for future in pending)
            assert all(isinstance(future.exception(0), ClientException) or future.result(0) > 0 for future in pending)
            # A broadcast call returns at once, however full the stuck client is.
            assert max(durations) < 1.0 * SECOND, f"slowest broadcast call took {max(durations):.3f}s"
            # The 99 readers are all still open.
            assert len(endpoint.get_clients()) == others
            assert stuck_id not in endpoint.get_clients()
            assert checker.errors == []
            assert [e for e in recorder.events if e[0] == "close"] == [close]
        finally:
            if checker is not None:
                checker.stop()
            for reader in readers:
                reader.close()
            if stuck is not None:
                stuck.close()


# -- order


def test_per_client_order_is_call_order_across_send_and_broadcast(recorder: Recorder) -> None:
    with serve(recorder) as server, connect(url(server), max_size=None) as ws, connect(url(server)) as other:
        endpoint = recorder.endpoint
        wait_until(lambda: len(endpoint.get_clients()) == 2)
        client_id = id_of(endpoint, ws.socket)
        other_id = id_of(endpoint, other.socket)
        expected: list[str | bytes] = []
        expected_other: list[str | bytes] = []
        for i in range(300):
            kind = i % 6
            big = i % 25 == 0
            text = f"{i}:" + ("x" * 150_000 if big else "y" * (i % 50))
            if kind == 0:
                endpoint.send(text, client_id)
                expected.append(text)
            elif kind == 1:
                endpoint.broadcast(text)
                expected.append(text)
                expected_other.append(text)
            elif kind == 2:
                endpoint.multicast_binary(text, [client_id])
                expected.append(text.encode())
            elif kind == 3:
                endpoint.send_binary(text, client_id)
                expected.append(text.encode())
            elif kind == 4:
                endpoint.broadcast_binary(text, except_ids=[other_id])
                expected.append(text.encode())
            else:
                endpoint.multicast(text, [other_id, client_id])
                expected.append(text)
                expected_other.append(text)
        received = [ws.recv(timeout=PROMPTLY) for _ in expected]
        received_other = [other.recv(timeout=PROMPTLY) for _ in expected_other]
    assert received == expected
    assert received_other == expected_other


# -- close


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_close_rejects_codes_an_endpoint_may_not_send(recorder: Recorder, code: int) -> None:
    with serve(recorder) as server, connect(url(server)) as ws:
        (client_id,) = client_ids(recorder, 1)
        with pytest.raises(ValueError):
            recorder.endpoint.close(client_id, code)
        # Still open.
        assert client_id in recorder.endpoint.get_clients()
        ws.send("still here")
        assert ws.recv(timeout=PROMPTLY) == "still here"


def test_close_rejects_a_reason_over_123_utf8_bytes(recorder: Recorder) -> None:
    with serve(recorder) as server, RawClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        endpoint = recorder.endpoint
        with pytest.raises(ValueError):
            endpoint.close(client_id, 1000, "é" * 62)  # 62 characters, 124 bytes
        with pytest.raises(ValueError):
            endpoint.close(client_id, 4000, "r" * 124)
        assert client_id in endpoint.get_clients()
        reason = "é" * 61 + "!"  # exactly 123 bytes
        endpoint.close(client_id, 4999, reason)
        assert client.recv_close(skip_data=False) == (4999, reason)
        # A second close on a closing client does nothing: no second close frame.
        endpoint.close(client_id, 3000, "again")
        client.send_frame(OP_CLOSE, (4999).to_bytes(2, "big"))
        assert client.recv_until_eof() == b""
        assert recorder.wait_event("close")[2:] == (4999, reason)


@pytest.mark.parametrize("code", [1000, 1001, 1008, 1011, 3000, 4999])
def test_close_accepts_sendable_codes(recorder: Recorder, code: int) -> None:
    with serve(recorder) as server, RawClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        recorder.endpoint.close(client_id, code, "bye")
        assert client.recv_close(skip_data=False) == (code, "bye")
        client.send_frame(OP_CLOSE, code.to_bytes(2, "big") + b"bye")
        assert recorder.wait_event("close")[2:] == (code, "bye")


def test_close_of_an_unknown_id_is_a_no_op(recorder: Recorder) -> None:
    with serve(recorder) as server, connect(url(server)) as ws:
        (client_id,) = client_ids(recorder, 1)
        recorder.endpoint.close(987_654_321)  # no exception: nothing to close
        recorder.endpoint.close(987_654_321, 4000, "whoever")
        assert recorder.endpoint.get_clients() == [client_id]
        ws.send("ok")
        assert ws.recv(timeout=PROMPTLY) == "ok"


# -- fragmentation


def recv_message_frames(client: RawClient) -> list[tuple[int, bool, int]]:
    """The frames of the next message as (opcode, fin, payload length)."""
    frames = []
    while True:
        opcode, fin, payload = client.recv_frame()
        frames.append((opcode, fin, len(payload)))
        if fin:
            return frames


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_131046_bytes_go_out_as_two_frames_of_65523(recorder: Recorder, binary: bool) -> None:
    with serve(recorder) as server, RawClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        data: str | bytes = b"b" * 131_046 if binary else "t" * 131_046
        first_opcode = OP_BINARY if binary else OP_TEXT
        future = recorder.endpoint.send(data, client_id)
        first = client.recv_frame()
        second = client.recv_frame()
        assert (first[0], first[1], len(first[2])) == (first_opcode, False, 65_523)
        assert (second[0], second[1], len(second[2])) == (OP_CONT, True, 65_523)
        assert first[2] + second[2] == (data if binary else data.encode())  # type: ignore[union-attr]
        assert future.result(PROMPTLY) == 2 * (4 + 65_523)


def test_message_of_exactly_auto_frame_size_is_one_frame(recorder: Recorder) -> None:
    with serve(recorder) as server, RawClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        recorder.endpoint.send(b"z" * 65_527, client_id)
        assert recv_message_frames(client) == [(OP_BINARY, True, 65_527)]
        recorder.endpoint.send(b"z" * 65_528, client_id)
        assert recv_message_frames(client) == [(OP_BINARY, False, 32_764), (OP_CONT, True, 32_764)]


def test_custom_auto_frame_size_splits_in_equal_fragments(recorder: Recorder) -> None:
    with serve(recorder, auto_frame_size=1000) as server, RawClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        future = recorder.endpoint.send("q" * 2500, client_id)
        assert recv_message_frames(client) == [(OP_TEXT, False, 834), (OP_CONT, False, 834), (OP_CONT, True, 832)]
        assert future.result(PROMPTLY) == wire_size(2500, 1000) == 3 * 4 + 2500
        recorder.endpoint.broadcast("r" * 1001)
        assert recv_message_frames(client) == [(OP_TEXT, False, 501), (OP_CONT, True, 500)]


def test_auto_frame_size_none_never_fragments(recorder: Recorder) -> None:
    with serve(recorder, auto_frame_size=None) as server, RawClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        future = recorder.endpoint.send(b"n" * 300_000, client_id)
        assert recv_message_frames(client) == [(OP_BINARY, True, 300_000)]
        assert future.result(PROMPTLY) == 10 + 300_000
        recorder.endpoint.broadcast("m" * 200_000)
        assert recv_message_frames(client) == [(OP_TEXT, True, 200_000)]


# -- get_info


def info_of(endpoint: Endpoint, client_id: int) -> ClientInfo:
    info = endpoint.get_info(client_id)
    assert info is not None
    return info


def test_get_info_moves_as_traffic_flows() -> None:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        data = message.result(timeout=PROMPTLY)
        rec.endpoint.send(data, client_id).result(PROMPTLY)
        rec.record("echoed", client_id, data)

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server:
        before_connect = time.time()
        client = RawClient(server.port)
        after_connect = time.time()
        with client:
            (client_id,) = client_ids(recorder, 1)
            endpoint = recorder.endpoint
            assert endpoint.get_info(987_654_321) is None
            start = info_of(endpoint, client_id)
            assert before_connect - 0.01 <= start.connected_at <= after_connect + 0.01
            assert start.remote_address == f"127.0.0.1:{client.sock.getsockname()[1]}"
            assert (start.closed_at, start.close_code, start.close_reason) == (0.0, None, None)
            assert (start.frames_read, start.messages_read, start.frames_sent, start.messages_sent) == (0, 0, 0, 0)
            assert start.bytes_sent == 0
            assert (start.last_sent_at, start.last_data_sent_at, start.last_data_read_at) == (0.0, 0.0, 0.0)
            assert start.send_queue_bytes == 0
            assert (start.subprotocol, start.compression) == (None, False)
            assert AERYS_INFO_KEYS <= set(start.as_dict())
            assert start.as_dict()["remote_address"] == start.remote_address
            assert {"remote_address", "subprotocol", "compression", "send_queue_bytes"} <= set(start.as_dict())
            with pytest.raises(AttributeError):
                start.bytes_read = 1  # type: ignore[misc]

            # A 10-byte text message (16 bytes on the wire) and its 12-byte echo.
            t0 = time.time()
            client.send_frame(OP_TEXT, b"0123456789")
            assert client.recv_frame() == (OP_TEXT, True, b"0123456789")
            recorder.wait_event("echoed")
            t1 = time.time()
            after_text = info_of(endpoint, client_id)
            assert after_text.bytes_read - start.bytes_read == 16
            assert (after_text.frames_read, after_text.messages_read) == (1, 1)
            assert (after_text.bytes_sent, after_text.frames_sent, after_text.messages_sent) == (12, 1, 1)
            assert t0 <= after_text.last_read_at <= t1
            assert t0 <= after_text.last_data_read_at <= t1
            assert t0 <= after_text.last_sent_at <= t1
            assert t0 <= after_text.last_data_sent_at <= t1
            assert after_text.connected_at == start.connected_at
            assert after_text.send_queue_bytes == 0

            # A ping (8 bytes) and its pong (4 bytes): control frames, not data.
            t2 = time.time()
            client.send_frame(OP_PING, b"hi")
            assert client.recv_frame() == (OP_PONG, True, b"hi")
            after_ping = wait_until(
                lambda: (info := info_of(endpoint, client_id)).frames_sent == 2 and info.frames_read == 2 and info
            )
            assert after_ping.bytes_read - after_text.bytes_read == 8
            assert after_ping.bytes_sent == 12 + 4
            assert (after_ping.messages_read, after_ping.messages_sent) == (1, 1)
            assert after_ping.last_read_at >= t2
            assert after_ping.last_sent_at >= t2
            assert after_ping.last_data_read_at == after_text.last_data_read_at
            assert after_ping.last_data_sent_at == after_text.last_data_sent_at

            # A message in three fragments: three frames, one message.
            client.send_frame(OP_BINARY, b"ab", fin=False)
            client.send_frame(OP_CONT, b"cd", fin=False)
            client.send_frame(OP_CONT, b"ef", fin=True)
            assert client.recv_frame() == (OP_BINARY, True, b"abcdef")
            recorder.wait_for(lambda events: len([e for e in events if e[0] == "echoed"]) == 2)
            after_fragments = info_of(endpoint, client_id)
            assert after_fragments.bytes_read - after_ping.bytes_read == 3 * 8
            assert (after_fragments.frames_read, after_fragments.messages_read) == (5, 2)
            assert (after_fragments.frames_sent, after_fragments.messages_sent) == (3, 2)
            assert after_fragments.bytes_sent == 16 + 8
            assert after_fragments.last_data_read_at >= t2
            assert after_fragments.last_data_sent_at >= after_ping.last_sent_at

            # Sends from the endpoint count too, fragments included.
            recorder.endpoint.send(b"w" * 131_046, client_id).result(PROMPTLY)
            assert recv_message_frames(client) == [(OP_BINARY, False, 65_523), (OP_CONT, True, 65_523)]
            after_big = info_of(endpoint, client_id)
            assert (after_big.frames_sent, after_big.messages_sent) == (5, 3)
            assert after_big.bytes_sent == 24 + 2 * (4 + 65_523)
            assert after_big.closed_at == 0.0


def test_get_info_send_queue_bytes_while_the_client_does_not_read(recorder: Recorder) -> None:
    with serve(recorder, heartbeat_period=None) as server, SmallWindowClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        endpoint = recorder.endpoint
        size = 8 * 1024 * 1024  # more than the loopback buffers take, less than max_send_queue
        future = endpoint.send(b"s" * size, client_id)
        queued = info_of(endpoint, client_id).send_queue_bytes
        assert 0 < queued <= wire_size(size)
        assert not future.done()
        # Now read it all: the queue empties and the future resolves.
        received = 0
        while received < size:
            _, fin, payload = client.recv_frame()
            received += len(payload)
        assert received == size and fin
        assert future.result(PROMPTLY) == wire_size(size)
        info = info_of(endpoint, client_id)
        assert info.send_queue_bytes == 0
        assert info.bytes_sent == wire_size(size)


def test_get_info_during_and_after_on_close() -> None:
    class InfoOnClose(Recorder):
        def on_close(self, client_id: int, code: int, reason: str) -> None:
            self.record(
                "close", client_id, code, reason, self.endpoint.get_info(client_id), self.endpoint.get_clients()
            )

    recorder = InfoOnClose()
    with serve(recorder) as server, connect(url(server)) as other:
        with connect(url(server)) as ws:
            wait_until(lambda: len(recorder.endpoint.get_clients()) == 2)
            client_id = id_of(recorder.endpoint, ws.socket)
            other_id = id_of(recorder.endpoint, other.socket)
            ws.send("hello")
            assert ws.recv(timeout=PROMPTLY) == "hello"
            before_close = time.time()
            ws.close(4000, "bye now")
        _, closed_id, code, reason, info, clients = recorder.wait_event("close")
        assert (closed_id, code, reason) == (client_id, 4000, "bye now")
        assert info is not None, "get_info returned None during on_close"
        assert (info.close_code, info.close_reason) == (4000, "bye now")
        assert info.closed_at >= before_close
        assert info.messages_read == 1
        assert client_id not in clients
        assert other_id in clients
        wait_until(lambda: recorder.endpoint.get_info(client_id) is None)
        assert client_id not in recorder.endpoint.get_clients()
        assert recorder.endpoint.get_info(other_id) is not None


def test_get_clients_excludes_a_client_as_soon_as_it_is_closing(recorder: Recorder) -> None:
    with serve(recorder, close_period=3.0) as server, RawClient(server.port) as closing, connect(url(server)) as ws:
        endpoint = recorder.endpoint
        wait_until(lambda: len(endpoint.get_clients()) == 2)
        closing_id = id_of(endpoint, closing.sock)
        open_id = id_of(endpoint, ws.socket)
        assert sorted(endpoint.get_clients()) == sorted([closing_id, open_id])
        endpoint.close(closing_id, 4001, "leaving")
        assert endpoint.get_clients() == [open_id]
        assert closing.recv_close() == (4001, "leaving")
        # The peer has not answered: still known, but closing.
        assert endpoint.get_clients() == [open_id]
        info = info_of(endpoint, closing_id)
        assert (info.close_code, info.close_reason) == (4001, "leaving")
        assert "close" not in recorder.kinds()
        closing.send_frame(OP_CLOSE, (4001).to_bytes(2, "big"))
        assert closing.recv_until_eof() == b""
        assert recorder.wait_event("close")[1:] == (closing_id, 4001, "leaving")
        assert endpoint.get_clients() == [open_id]


# -- pings between fragments


def test_ping_between_fragments_is_answered_at_once(recorder: Recorder) -> None:
    with serve(recorder) as server, RawClient(server.port) as client:
        client.send_frame(OP_TEXT, b"hello ", fin=False)
        client.send_frame(OP_PING, b"are you there")
        # The pong comes while the message is still incomplete.
        assert client.recv_frame() == (OP_PONG, True, b"are you there")
        client.send_frame(OP_CONT, b"world", fin=True)
        assert client.recv_frame() == (OP_TEXT, True, b"hello world")
        assert recorder.wait_event("data")[2] == "hello world"
        # And an empty ping in a binary message.
        client.send(
            client_frame(OP_BINARY, b"\x01", fin=False) + client_frame(OP_PING) + client_frame(OP_CONT, b"\x02")
        )
        assert client.recv_frame() == (OP_PONG, True, b"")
        assert client.recv_frame() == (OP_BINARY, True, b"\x01\x02")


def test_pong_goes_out_between_the_frames_of_a_queued_message(recorder: Recorder) -> None:
    with serve(recorder, heartbeat_period=None) as server, SmallWindowClient(server.port) as client:
        (client_id,) = client_ids(recorder, 1)
        endpoint = recorder.endpoint
        # 12 MiB in 193 frames: far more than the loopback buffers hold, so most
        # of it is still queued when the ping arrives.
        size = 12 * 1024 * 1024
        future = endpoint.send(b"q" * size, client_id)
        assert info_of(endpoint, client_id).send_queue_bytes > 0
        client.send_frame(OP_PING, b"still there?")
        received = 0
        while True:
            opcode, fin, payload = client.recv_frame()
            if opcode == OP_PONG:
                assert payload == b"still there?"
                break
            assert opcode in (OP_BINARY, OP_CONT)
            assert not fin, "the pong waited for the whole queued message"
            received += len(payload)
        while received < size:
            opcode, fin, payload = client.recv_frame()
            assert opcode == OP_CONT
            received += len(payload)
        assert fin and received == size
        assert future.result(PROMPTLY) == wire_size(size)
