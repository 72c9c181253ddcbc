"""SendQueue and Flusher over a real socketpair: ordering, partial writes, sealing, breakage."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from syncaerys.client.sendqueue import ENTRY_COST
from syncaerys.client.sendqueue import SEND_QUEUE_GRACE
from syncaerys.client.sendqueue import TRANSITIONS
from syncaerys.client.sendqueue import Flusher
from syncaerys.client.sendqueue import QueueState
from syncaerys.client.sendqueue import SendQueue
from syncaerys.client.transport import PlainTransport
from syncaerys.exceptions import ClientException
from syncaerys.protocol.frames import OP_BINARY
from syncaerys.protocol.frames import OP_PING
from syncaerys.protocol.frames import OP_PONG
from syncaerys.protocol.frames import encode_close
from syncaerys.protocol.frames import encode_frame
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
    assert queue.put(frames, outcome) == 0
    # Told in the sender's thread, before put() returned.
    assert outcome.told.is_set() and outcome.written == sum(map(len, frames)) == 10
    assert read_exactly(theirs, 10) == b"".join(frames)
    assert (queue.bytes_sent, queue.frames_sent, queue.messages_sent, queue.queued_bytes) == (10, 2, 1, 0)
    assert queue.last_data_sent_at > 0 and queue.backlog_since == 0.0


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
