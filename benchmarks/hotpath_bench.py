"""What each piece of syncaerys's per-message path costs, in-process (no load generator).

    python benchmarks/hotpath_bench.py

Times, with ``timeit`` (best of 5), the steps one echoed 32-byte text message
takes on the server: parsing the client's frame, the Message handed to
``on_data``, encoding the answer, queueing it on a socket that takes it at
once, and the send future. The sum is the protocol work that the
``threads-floor`` server (``servers/threads_floor_server.py``) does not do;
the rest of the gap to it is the connection's own glue (reads, handler calls).
Run it on an idle machine; it prints microseconds per step.
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
from syncaerys.protocol.frames import OP_TEXT
from syncaerys.protocol.parser import Frame
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


def main() -> None:
    total = 0.0
    for name, step in steps().items():
        micros = min(timeit.repeat(step, number=NUMBER, repeat=5)) / NUMBER * 1e6
        total += micros
        print(f"{name:36s} {micros:6.2f} µs")
    print(f"{'sum':36s} {total:6.2f} µs")


if __name__ == "__main__":
    main()
