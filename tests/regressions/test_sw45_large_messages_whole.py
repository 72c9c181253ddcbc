"""simple-websocket #45: large messages (4 MB and more) arrive whole.

Known bug: simple-websocket #45. ``send()`` wrote each frame with
``sock.send(out_data)``, which on a large message (~4 MB) writes only part of
it: the rest was lost and the peer saw a truncated, then garbled stream. The
fix needed a loop, and then a lock (an RLock for the reporter), because the
loop made ``send`` non-atomic and concurrent senders interleaved their bytes.
1.1.0 and main (2026-05) still call ``sock.send``.

Guarantee, with ``max_message_size``, ``max_frame_size``, ``max_send_queue``
raised and the byte rate limit off: 4 MiB and 16 MiB messages, binary and
text, sent whole or in fragments by the client, come back whole; a 16 MiB
message sent from an application thread to a client that reads in small
pieces (so the socket takes it a bit at a time and the flusher finishes it)
arrives whole in equal fragments; four threads sending 4 MiB each to one
client at once produce four whole messages, never interleaved.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect

from syncaerys import SendFuture
from tests.regressions.helpers import OP_BINARY
from tests.regressions.helpers import OP_CONT
from tests.regressions.helpers import assert_no_errors
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import SmallWindowClient
from tests.utils import serve
from tests.utils import url

MiB = 1 << 20
LARGE: dict[str, object] = {
    "max_message_size": 32 * MiB,
    "max_frame_size": 32 * MiB,
    "max_send_queue": 128 * MiB,
    "max_bytes_per_minute": None,
    "heartbeat_period": None,
}
#: Large transfers on a loaded 2-core box: a generous bound.
SLOW = 6 * PROMPTLY


def text_of(size: int) -> str:
    """About ``size`` UTF-8 bytes of 1-, 2-, 3- and 4-byte characters with position markers."""
    unit = "a\u00e9\u20ac\U0001f600"  # 1 + 2 + 3 + 4 bytes
    parts = []
    length = 0
    number = 0
    while length < size:
        part = f"[{number}]{unit}"
        parts.append(part)
        length += len(part.encode())
        number += 1
    return "".join(parts)


def fragments(data: bytes | str, size: int) -> Iterator[bytes | str]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    ("size", "kind", "fragmented"),
    [
        (4 * MiB, "binary", False),
        (4 * MiB, "text", False),
        (4 * MiB, "binary", True),
        (16 * MiB, "binary", False),
        (16 * MiB, "text", True),
    ],
)
def test_large_message_echoed_whole(size: int, kind: str, fragmented: bool, caplog: pytest.LogCaptureFixture) -> None:
    payload: bytes | str = os.urandom(size) if kind == "binary" else text_of(size)
    recorder = Recorder()
    with serve(recorder, **LARGE) as server, connect(url(server), max_size=None, open_timeout=PROMPTLY) as ws:
        if fragmented:
            ws.send(fragments(payload, 1 * MiB + 7))
        else:
            ws.send(payload)
        echoed = ws.recv(timeout=SLOW)
        assert type(echoed) is type(payload)
        assert len(echoed) == len(payload)
        assert echoed == payload
        data = recorder.wait_event("data")[2]
        assert data == payload
    assert_no_errors(caplog)


def test_16mb_to_a_slow_reader_arrives_whole_in_equal_fragments(caplog: pytest.LogCaptureFixture) -> None:
    payload = os.urandom(16 * MiB)
    recorder = Recorder()
    with serve(recorder, **LARGE) as server, SmallWindowClient(server.port, rcvbuf=16 * 1024) as client:
        client_id = recorder.wait_event("open")[1]
        future: SendFuture[int] = recorder.endpoint.send_binary(payload, client_id)
        received = hashlib.sha256()
        total = 0
        sizes: list[int] = []
        opcodes: list[int] = []
        while True:
            opcode, fin, chunk = client.recv_frame()
            opcodes.append(opcode)
            sizes.append(len(chunk))
            received.update(chunk)
            total += len(chunk)
            if fin:
                break
        assert total == len(payload)
        assert received.digest() == hashlib.sha256(payload).digest()
        assert opcodes == [OP_BINARY] + [OP_CONT] * (len(opcodes) - 1)
        # Equal fragments of at most auto_frame_size (65,527 bytes by default).
        assert max(sizes) <= 65_527
        assert max(sizes) - min(sizes) <= 1
        written = future.result(PROMPTLY)
        assert written > len(payload)  # payload plus the frame headers
    assert_no_errors(caplog)


def test_concurrent_4mb_sends_are_never_interleaved(caplog: pytest.LogCaptureFixture) -> None:
    senders = 4
    payloads = [bytes([number]) * 16 + os.urandom(4 * MiB) for number in range(senders)]
    recorder = Recorder()
    with serve(recorder, **LARGE) as server, connect(url(server), max_size=None, open_timeout=PROMPTLY) as ws:
        client_id = recorder.wait_event("open")[1]
        barrier = threading.Barrier(senders, timeout=PROMPTLY)
        futures: list[SendFuture[int]] = []
        lock = threading.Lock()

        def send(payload: bytes) -> None:
            barrier.wait()
            future = recorder.endpoint.send(payload, client_id)
            with lock:
                futures.append(future)

        threads = [threading.Thread(target=send, args=(payload,)) for payload in payloads]
        for thread in threads:
            thread.start()
        received = [ws.recv(timeout=SLOW) for _ in range(senders)]
        for thread in threads:
            thread.join(PROMPTLY)
        assert sorted(received, key=lambda message: message[0]) == payloads
        assert all(future.result(PROMPTLY) > 4 * MiB for future in futures)
        assert len(futures) == senders
    assert_no_errors(caplog)
