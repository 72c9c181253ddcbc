"""SendQueue and Flusher over a real socketpair: ordering, partial writes, sealing, breakage."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from syncaerys.client.sendqueue import ENTRY_COST
from syncaerys.client.sendqueue import SEND_QUEUE_GRACE
from syncaerys.client.sendqueue import TRANSITIONS
from syncaerys.client.sendqueue import WRITTEN_UNTOLD
from syncaerys.client.sendqueue import Flusher
from syncaerys.client.sendqueue import QueueState
from syncaerys.client.sendqueue import SendQueue
from syncaerys.client.transport import PlainTransport
from syncaerys.exceptions import ClientException
from syncaerys.protocol.frames import OP_BINARY
from syncaerys.protocol.frames import OP_PING
from syncaerys.protocol.frames import OP_PONG
from syncaerys.protocol.frames import OutFrame
from syncaerys.protocol.frames import encode_close
from syncaerys.protocol.frames import encode_frame
from syncaerys.protocol.frames import encode_frames
from syncaerys.protocol.frames import frame_length
from tests.utils import PROMPTLY


class Outcome:
    """A Waiter that records what it was told."""

    def __init__(self) -> None:
        self.told = threading.Event()
        self.written: int | None = None
        self.error: BaseException | None = None
        self.calls = 0

    def message_written(self, client_id: int, nbytes: int) -> None:
        self.calls += 1
        self.written = nbytes
        self.told.set()

    def message_failed(self, client_id: int, error: BaseException) -> None:
        self.calls += 1
        self.error = error
        self.told.set()


Pair = tuple[socket.socket, socket.socket]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    # Small buffers, so that "the socket is full" takes kilobytes, not megabytes.
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    theirs.settimeout(PROMPTLY)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.fixture
def flusher() -> Flusher:
    return Flusher(name="test-flusher")


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return data


def test_a_message_that_fits_is_written_at_once_and_its_waiter_told(pair: Pair, flusher: Flusher) -> None:
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher)
    frames = [encode_frame(OP_BINARY, b"abc", fin=False), encode_frame(0, b"def")]
    outcome = Outcome()
    assert queue.put(list[OutFrame](frames), outcome) == 0
    # Told in the sender's thread, before put() returned.
    assert outcome.told.is_set() and outcome.written == sum(map(len, frames)) == 10
    assert read_exactly(theirs, 10) == b"".join(frames)
    assert (queue.bytes_sent, queue.frames_sent, queue.messages_sent, queue.queued_bytes) == (10, 2, 1, 0)
    assert queue.last_data_sent_at > 0 and queue.backlog_since == 0.0


def test_untold_puts_leave_the_waiter_to_the_caller_only_when_written_at_once(pair: Pair, flusher: Flusher) -> None:
    # What a fan-out does: it counts the copies written at once and tells its tracker once.
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher)
    small = encode_frame(OP_BINARY, b"abc")
    at_once = Outcome()
    assert queue.put([small], at_once, tell_written_now=False) == WRITTEN_UNTOLD
    assert at_once.calls == 0
    assert read_exactly(theirs, len(small)) == small
    # One that must wait is still reported by whoever writes it.
    big = encode_frame(OP_BINARY, b"x" * 200_000)
    later = Outcome()
    queued = queue.put([big], later, tell_written_now=False)
    assert queued is not None and queued > 0 and later.calls == 0
    assert read_exactly(theirs, len(big)) == big
    assert later.told.wait(PROMPTLY) and (later.calls, later.written) == (1, len(big))


def test_what_the_socket_does_not_take_is_written_by_the_flusher_in_order(pair: Pair, flusher: Flusher) -> None:
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher)
    big = encode_frame(OP_BINARY, b"x" * 200_000)
    small = encode_frame(OP_BINARY, b"after")
    first, second = Outcome(), Outcome()
    queued = queue.put([big], first)
    assert queued is not None and queued > 0 and queue.backlog_since > 0
    assert queue.put([small], second) == queued + len(small)
    # A ping jumps ahead of the queued message, but not into the frame being written.
    assert queue.put_control(encode_frame(OP_PING, b"p")) is not None
    assert not first.told.is_set()
    data = read_exactly(theirs, len(big) + len(small) + 3)
    assert data[: len(big)] == big
    assert data[len(big) :] == encode_frame(OP_PING, b"p") + small
    assert first.told.wait(PROMPTLY) and second.told.wait(PROMPTLY)
    assert (first.written, second.written) == (len(big), len(small))
    assert queue.wait_drained(PROMPTLY) and queue.queued_bytes == 0


def test_a_sealed_queue_refuses_data_and_drop_queued_returns_the_waiters(pair: Pair, flusher: Flusher) -> None:
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher, held=True)
    kept = Outcome()
    assert queue.put([encode_frame(OP_BINARY, b"one")], kept) is not None
    close = encode_close(1000)
    assert queue.put_last(close, drop_queued=True) == [kept]
    late = Outcome()
    assert queue.put([encode_frame(OP_BINARY, b"two")], late) is None
    assert queue.put_control(encode_frame(OP_PING, b"")) is None
    assert late.calls == 0  # a refused message's waiter is the caller's to tell
    queue.release()
    assert read_exactly(theirs, len(close)) == close


def test_a_held_queue_writes_nothing_until_released(pair: Pair, flusher: Flusher) -> None:
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher, held=True)
    outcome = Outcome()
    frame = encode_frame(OP_BINARY, b"queued before the 101")
    assert queue.put([frame], outcome) == len(frame)
    ours.sendall(b"HTTP/1.1 101 ...\r\n\r\n")  # what the gateway writes meanwhile
    assert not outcome.told.is_set()
    queue.release()
    assert outcome.told.is_set()
    assert read_exactly(theirs, 20 + len(frame)) == b"HTTP/1.1 101 ...\r\n\r\n" + frame


def test_a_broken_socket_fails_every_waiter_once(pair: Pair, flusher: Flusher) -> None:
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher)
    stuck, waiting = Outcome(), Outcome()
    queue.put([encode_frame(OP_BINARY, b"x" * 200_000)], stuck)
    queue.put([encode_frame(OP_BINARY, b"y")], waiting)
    theirs.close()  # the peer goes away with data unread
    assert stuck.told.wait(PROMPTLY) and waiting.told.wait(PROMPTLY)
    assert isinstance(stuck.error, ClientException) and isinstance(waiting.error, ClientException)
    assert queue.broken and queue.put([b"z"], Outcome()) is None
    assert queue.shutdown() == [] and stuck.calls == waiting.calls == 1


def test_shutdown_returns_what_was_never_written_and_the_flusher_lets_go(pair: Pair, flusher: Flusher) -> None:
    ours, _ = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher)
    outcome = Outcome()
    queue.put([encode_frame(OP_BINARY, b"x" * 200_000)], outcome)
    assert not queue.wait_drained(0.05)  # nobody reads: it does not drain
    assert queue.shutdown() == [outcome]
    assert queue.queued_bytes == 0 and outcome.calls == 0


def test_at_most_one_pong_waits_the_answer_to_the_latest_ping(pair: Pair, flusher: Flusher) -> None:
    """RFC 6455 5.5.3: a pong for the most recent ping only. Before, each ping of a flood queued its own."""
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher)
    outcome = Outcome()
    big = encode_frame(OP_BINARY, b"b" * 200_000)
    assert queue.put([big], outcome) is not None
    before = queue.queued_bytes
    pongs = [encode_frame(OP_PONG, str(i).encode()) for i in range(10_000)]
    for pong in pongs:
        queue.put_pong(pong)
    assert queue.queued_bytes <= before + len(pongs[-1])
    assert queue.charge <= before + len(pongs[-1]) + 2 * ENTRY_COST
    received = read_exactly(theirs, len(big) + len(pongs[-1]))
    assert pongs[-1] in received and pongs[0] not in received
    assert outcome.told.wait(PROMPTLY) and outcome.written == len(big)


def test_the_state_machine_refuses_what_makes_no_sense(pair: Pair, flusher: Flusher) -> None:
    ours, _ = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher, held=True)
    states = [queue.state]
    queue.put_last(encode_close(1001))
    states.append(queue.state)
    assert states == [QueueState.HELD, QueueState.HELD_SEALED]
    assert queue.put([b"late"], None) is None and queue.put_pong(b"\x8a\x00") is None
    queue.release()
    states.append(queue.state)
    with pytest.raises(RuntimeError, match="'release' in state"):
        queue.release()
    queue.shutdown()
    states.append(queue.state)
    assert states[2] in (QueueState.SEALED, QueueState.SEALED_FLUSHING)
    assert states[3] is QueueState.BROKEN and queue.broken
    # Every state has a way out to BROKEN, and BROKEN stays.
    assert all(TRANSITIONS[state, "break"] is QueueState.BROKEN for state in QueueState)


def test_a_queue_over_its_limit_is_reported_by_the_flusher_after_the_grace(pair: Pair, flusher: Flusher) -> None:
    ours, _ = pair
    told = threading.Event()
    reports: list[tuple[int, float]] = []

    def overflow(charge: int, full_for: float) -> None:
        reports.append((charge, full_for))
        told.set()

    queue = SendQueue(PlainTransport(ours), 7, flusher, limit=100_000, overflow=overflow)
    assert queue.put([encode_frame(OP_BINARY, b"b" * 300_000)], None) is not None
    assert not reports  # within the grace, under the ceiling
    assert told.wait(SEND_QUEUE_GRACE + PROMPTLY)
    charge, full_for = reports[0]
    assert charge > 100_000 and full_for >= SEND_QUEUE_GRACE
    queue.shutdown()


def test_a_reader_that_keeps_taking_bytes_is_not_reported_however_long_it_is_over_the_limit(
    pair: Pair, flusher: Flusher
) -> None:
    # A slow reader keeps the queue over its limit for longer than the grace, but its
    # socket never stays full for the grace: it is keeping up, and is not cut off.
    ours, theirs = pair
    reports: list[tuple[int, float]] = []
    queue = SendQueue(PlainTransport(ours), 7, flusher, limit=62_000, overflow=lambda *report: reports.append(report))
    payload = b"r" * 240_000  # under the ceiling (4 x the limit)
    assert queue.put([encode_frame(OP_BINARY, payload)], None) is not None
    started = over_until = time.monotonic()
    received = 0
    while received < len(payload):
        chunk = theirs.recv(4096)
        assert chunk
        received += len(chunk)
        if queue.queued_bytes > 62_000:
            over_until = time.monotonic()
        time.sleep(0.04)  # the pace of a slow reader, not a synchronisation
    assert over_until - started > SEND_QUEUE_GRACE + 0.2
    assert queue.wait_drained(PROMPTLY)
    assert not reports
    queue.shutdown()


# -- frames in two parts (header and payload), written with sendmsg


class CappedTransport(PlainTransport):
    """A real socket whose writes take at most the next of ``caps`` bytes each (then any amount).

    So that a write ends exactly where a test wants it: inside a header, at
    its end, inside a payload. What is written still goes through the socket.
    Writes from another thread (the flusher) take nothing until
    ``flusher_may_write`` is set, as if the socket were full, so that what the
    test's own thread queues is seen before them. (They must not wait for it:
    the flusher writes holding the queue's lock, which the test's next put
    needs.)
    """

    def __init__(self, sock: socket.socket, caps: list[int]) -> None:
        super().__init__(sock)
        self.caps = caps
        self.calls: list[str] = []
        self.flusher_may_write = threading.Event()
        self._test_thread = threading.get_ident()

    def _cap(self) -> int | None:
        if threading.get_ident() != self._test_thread and not self.flusher_may_write.is_set():
            return 0  # the flusher's turn has not come: nothing taken, and it tries again
        return self.caps.pop(0) if self.caps else None

    def send_nowait(self, data: bytes | memoryview) -> int:
        self.calls.append("send")
        cap = self._cap()
        return super().send_nowait(memoryview(data)[:cap] if cap is not None else data)

    def send_parts_nowait(self, head: bytes | memoryview, body: bytes | memoryview) -> int:
        self.calls.append("sendmsg")
        cap = self._cap()
        if cap is None:
            return super().send_parts_nowait(head, body)
        if cap <= len(head):
            return super().send_nowait(memoryview(head)[:cap])
        return super().send_parts_nowait(head, memoryview(body)[: cap - len(head)])


def test_a_large_frame_goes_out_in_one_sendmsg_without_a_joined_copy(pair: Pair, flusher: Flusher) -> None:
    ours, theirs = pair
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    transport = CappedTransport(ours, [])
    transport.flusher_may_write.set()
    queue = SendQueue(transport, 7, flusher)
    payload = bytes(range(256)) * 160
    frames = encode_frames(OP_BINARY, payload, None)
    assert isinstance(frames[0], tuple)
    outcome = Outcome()
    assert queue.put(frames, outcome) == 0
    assert transport.calls == ["sendmsg"]
    assert outcome.written == frame_length(frames[0]) == 4 + len(payload)
    assert read_exactly(theirs, 4 + len(payload)) == b"\x82\x7e" + len(payload).to_bytes(2, "big") + payload


@pytest.mark.parametrize(
    "caps",
    [
        # put() writes, and writes again what is left (a 0: the socket is full, the flusher takes over).
        [1, 0],  # the first write ends inside the header
        [4, 0],  # ... at its end, the payload not started
        [3, 0, 2, 0],  # inside the header, then across its end into the payload
        [0, 0, 4000, 0, 9],  # the socket full at once, then inside the payload, full again
    ],
)
def test_a_two_part_frame_written_in_pieces_arrives_whole_and_is_counted_once(
    pair: Pair, flusher: Flusher, caps: list[int]
) -> None:
    ours, theirs = pair
    transport = CappedTransport(ours, list(caps))
    queue = SendQueue(transport, 7, flusher)
    payload = bytes(index % 253 for index in range(20_000))
    frames = encode_frames(OP_BINARY, payload, None)
    wire = b"\x82\x7e" + len(payload).to_bytes(2, "big") + payload
    outcome = Outcome()
    queued = queue.put(frames, outcome)
    assert queued == len(wire) - caps[0]
    assert queue.charge == queued + ENTRY_COST  # one frame queued, whatever part of it is left
    after = Outcome()
    assert queue.put([encode_frame(OP_BINARY, b"next")], after) == queued + 6
    transport.flusher_may_write.set()
    assert read_exactly(theirs, len(wire) + 6) == wire + encode_frame(OP_BINARY, b"next")
    assert outcome.told.wait(PROMPTLY) and after.told.wait(PROMPTLY)
    assert (outcome.calls, outcome.written, after.written) == (1, len(wire), 6)
    assert queue.wait_drained(PROMPTLY)
    assert (queue.queued_bytes, queue.charge) == (0, 0)
    assert (queue.bytes_sent, queue.frames_sent) == (len(wire) + 6, 2)


def test_a_slow_reader_of_large_fragmented_messages_gets_every_byte_in_order(pair: Pair, flusher: Flusher) -> None:
    # A real socket with 4 KiB buffers takes part of each sendmsg: the rest waits for the flusher.
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher)
    messages = [bytes([65 + n]) * (150_000 + n) for n in range(3)]
    encoded = [encode_frames(OP_BINARY, message, 65_527) for message in messages]
    assert all(len(frames) == 3 and all(isinstance(f, tuple) for f in frames) for frames in encoded)
    outcomes = [Outcome() for _ in messages]
    sizes = [sum(frame_length(frame) for frame in frames) for frames in encoded]
    queued = [queue.put(frames, outcome) for frames, outcome in zip(encoded, outcomes, strict=True)]
    assert queued[0] is not None and 0 < queued[0] < sizes[0]
    assert queued[2] is not None and queued[2] > sum(sizes[1:])
    assert queue.put_control(encode_frame(OP_PING, b"p")) is not None
    # Read in small pieces, slower than the flusher writes.
    data = bytearray()
    total = sum(sizes) + 3
    while len(data) < total:
        chunk = theirs.recv(1500)
        assert chunk, f"EOF after {len(data)} of {total} bytes"
        data += chunk
    for outcome, size in zip(outcomes, sizes, strict=True):
        assert outcome.told.wait(PROMPTLY) and (outcome.calls, outcome.written) == (1, size)
    parsed = []
    at = 0
    while at < len(data):
        first, second = data[at], data[at + 1]
        length = second & 0x7F
        at += 2
        if length == 126:
            length = int.from_bytes(data[at : at + 2], "big")
            at += 2
        elif length == 127:
            length = int.from_bytes(data[at : at + 8], "big")
            at += 8
        parsed.append((first, bytes(data[at : at + length])))
        at += length
    # The ping goes between frames, never inside one.
    assert (0x89, b"p") in parsed
    data_frames = [piece for first, piece in parsed if first & 0x0F != OP_PING]
    assert b"".join(data_frames) == b"".join(messages)
    assert queue.wait_drained(PROMPTLY) and (queue.queued_bytes, queue.charge) == (0, 0)
    assert queue.frames_sent == 10 and queue.bytes_sent == total


def test_a_broken_socket_mid_sendmsg_fails_the_waiter_once(pair: Pair, flusher: Flusher) -> None:
    ours, theirs = pair
    queue = SendQueue(PlainTransport(ours), 7, flusher)
    outcome = Outcome()
    assert queue.put(encode_frames(OP_BINARY, b"q" * 300_000, None), outcome)
    theirs.close()
    assert outcome.told.wait(PROMPTLY)
    assert outcome.calls == 1 and isinstance(outcome.error, ClientException)
    assert queue.broken and queue.charge == 0
