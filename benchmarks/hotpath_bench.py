"""What each piece of syncaerys's per-message path costs, in-process (no load generator).

    python benchmarks/hotpath_bench.py

Times, with ``timeit`` (best of 5), the steps one echoed 32-byte text message
takes on the server: parsing the client's frame, the Message handed to
``on_data``, encoding the answer, queueing it on a socket that takes it at
once, and the send future. The sum is the protocol work that the
``threads-floor`` server (``servers/threads_floor_server.py``) does not do;
the rest of the gap to it is the connection's own glue (reads, handler calls).
Then, apart from the sum, one 1 MiB binary frame arriving in 64 KiB reads, parsed
the two ways the parser offers: fed read by read (pieces joined at the end) and
read into the one buffer of its size that ``FrameParser.receive_buffer`` gives
(what a connection does; the copy into it stands for ``recv_into``).
Run it on an idle machine; it prints microseconds per step. ``SYNCAERYS_NO_EXTENSIONS=1``
times the pure-Python path.
"""

from __future__ import annotations

import socket
import time
import timeit
from collections.abc import Callable

from syncaerys.client.sendqueue import SendQueue
from syncaerys.client.sendqueue import shared_flusher
from syncaerys.client.transport import transport_for
from syncaerys.futures import SendFuture
from syncaerys.message import Message
from syncaerys.protocol import framing
from syncaerys.protocol.frames import OP_BINARY
from syncaerys.protocol.frames import OP_TEXT
from syncaerys.protocol.mask import apply_mask
from syncaerys.protocol.parser import Frame
from syncaerys.protocol.parser import FrameParser
from syncaerys.protocol.session import Session

NUMBER = 200_000
KEY = b"\x01\x02\x03\x04"
PAYLOAD = b"x" * 32
FRAME = bytes((0x81, 0x80 | len(PAYLOAD))) + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(PAYLOAD))


def new_session() -> Session:
    return Session(
        max_frame_size=None,
        max_message_size=None,
        text_only=False,
        deflate=None,
        auto_frame_size=65527,
        compression_threshold=1024,
        compression_memory_level=8,
        clock=time.monotonic,
    )


class _OpenSource:
    """A frame source for a message that arrived in one frame (nothing more is read)."""

    is_open = True

    def next_data_frame(self, deadline: float | None) -> Frame | None:
        return None


def steps() -> dict[str, Callable[[], object]]:
    session = new_session()

    def parse() -> None:
        # As the connection does: the empty look before the read, the read-size hint, the frame.
        session.next_event()
        session.missing  # noqa: B018
        session.receive_data(FRAME)
        session.next_event()

    source = _OpenSource()
    first = Frame(OP_TEXT, PAYLOAD.decode(), True)

    def message() -> None:
        handed = Message(source, first)
        handed.result()
        handed.close()

    def encode() -> None:
        session.encode(OP_TEXT, PAYLOAD)

    sender, receiver = socket.socketpair()
    receiver.setblocking(False)
    queue = SendQueue(transport_for(sender), 1, shared_flusher())
    frames = [bytes((0x81, len(PAYLOAD))) + PAYLOAD]
    count = 0

    def put() -> None:
        nonlocal count
        queue.put(frames, None)
        count += 1
        if count % 256 == 0:  # keep the socket from filling (a full one would hand off to the flusher)
            try:
                while receiver.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass

    def future() -> None:
        sent: SendFuture[int] = SendFuture()
        sent.message_written(1, len(frames[0]))

    return {
        "parse the frame (Session)": parse,
        "Message: init, result(), close()": message,
        "encode the answer (Session)": encode,
        "SendQueue.put, written at once": put,
        "SendFuture: create, resolve": future,
    }


LARGE = 1 << 20
LARGE_READ = 1 << 16
LARGE_NUMBER = 50


def large_steps() -> dict[str, Callable[[], object]]:
    payload = bytes(range(256)) * (LARGE // 256)
    frame = bytes((0x80 | OP_BINARY, 0x80 | 127)) + LARGE.to_bytes(8, "big") + KEY + apply_mask(payload, KEY)
    first = frame[:1024]  # what the connection's 1 KiB buffer takes first
    reads = [frame[i : i + LARGE_READ] for i in range(len(first), len(frame), LARGE_READ)]

    def fed() -> None:
        parser = FrameParser()
        parser.feed(first)
        parser.next_frame()
        for data in reads:
            parser.feed(data)
            frame = parser.next_frame()
        assert frame is not None and len(frame.data) == LARGE

    def into_its_buffer() -> None:
        parser = FrameParser()
        parser.feed(first)
        parser.next_frame()
        for data in reads:
            view = parser.receive_buffer()
            assert view is not None
            view[: len(data)] = data
            parser.received_into(len(data))
            frame = parser.next_frame()
        assert frame is not None and len(frame.data) == LARGE

    return {"1 MiB frame, fed in 64 KiB reads": fed, "1 MiB frame, read into its buffer": into_its_buffer}


def main() -> None:
    print(f"C extension: {'built' if framing.SPEEDUPS else 'NOT used (pure Python)'}")
    total = 0.0
    for name, step in steps().items():
        micros = min(timeit.repeat(step, number=NUMBER, repeat=5)) / NUMBER * 1e6
        total += micros
        print(f"{name:36s} {micros:6.2f} µs")
    print(f"{'sum':36s} {total:6.2f} µs")
    for name, step in large_steps().items():
        micros = min(timeit.repeat(step, number=LARGE_NUMBER, repeat=5)) / LARGE_NUMBER * 1e6
        print(f"{name:36s} {micros:6.0f} µs")


if __name__ == "__main__":
    main()
