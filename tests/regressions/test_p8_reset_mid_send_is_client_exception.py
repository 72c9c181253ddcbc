"""P8: an abrupt reset while the server is sending gives ClientException, never OSError.

Probe P8 (simple-websocket/flask-sock, a client that resets
its connection while the server pushes): in 5 runs the handler saw
``ConnectionClosed`` once and a raw ``BrokenPipeError`` /
``ConnectionResetError`` 4 times; flask-sock does not catch those, so Flask
logged "Exception on /push [GET]" and took its HTTP 500 path.

Guarantee: the client sends an RST (SO_LINGER 0, then close) while the server
streams large messages to it, both from ``on_data`` (the client's own thread,
``endpoint.send(...).result()``) and from another thread of the application.
Every send then either completes or fails with ``ClientException`` (a failed
future, or a future that resolves as failed); no ``OSError`` reaches either
sender and no sender is left waiting on a future that never resolves;
``on_close`` gets 1006 once and nothing is logged as an error. Two client
behaviours: one that stopped reading (the server's queue is full and the
shared flusher owns the socket when the RST arrives) and one that reads and
resets in the middle of the stream (the senders' own direct writes hit it).
"""

from __future__ import annotations

import threading

import pytest

from syncaerys import ClientException
from syncaerys import Message
from syncaerys import SendFuture
from tests.regressions.helpers import OP_BINARY
from tests.regressions.helpers import assert_no_errors
from tests.regressions.helpers import count_events
from tests.regressions.helpers import nth_event
from tests.regressions.helpers import reset
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import SmallWindowClient
from tests.utils import serve
from tests.utils import wait_until

CHUNK = 256 * 1024
MAX_SENDS = 2000  # 500 MiB: the stream is over long before this


class Pusher(Recorder):
    """Streams CHUNK-sized messages to a client from on_data and from a thread of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []
        #: Each sender's latest send, the one it is waiting for.
        self.current: dict[str, SendFuture[int]] = {}

    def stream(self, who: str, client_id: int) -> None:
        payload = bytes(range(256)) * (CHUNK // 256)
        outcome: object = "all sent"
        sent = 0
        self.record("streaming", who)
        try:
            for _ in range(MAX_SENDS):
                future = self.current[who] = self.endpoint.send(payload, client_id)
                future.result(timeout=PROMPTLY)
                sent += 1
        except BaseException as error:
            outcome = error
        self.record("outcome", who, outcome, sent)

    def on_open(self, client_id: int, handshake_data: object) -> None:
        super().on_open(client_id, handshake_data)
        thread = threading.Thread(target=self.stream, args=("other thread", client_id), name="app-pusher")
        self.threads.append(thread)

    def on_data(self, client_id: int, message: Message) -> None:
        assert message.result() == "push"
        self.threads[0].start()
        self.stream("on_data", client_id)


@pytest.mark.parametrize("client", ["stopped-reading", "reading"])
def test_reset_mid_send_gives_client_exception_and_1006(client: str, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Pusher()
    with (
        serve(recorder, heartbeat_period=None, max_send_queue=64 * 1024 * 1024) as server,
        SmallWindowClient(server.port) as peer,
    ):
        client_id = recorder.wait_event("open")[1]
        peer.send_frame(0x1, b"push")
        nth_event(recorder, "streaming", 1)
        if client == "stopped-reading":
            # Wait until both senders wait for a send that cannot complete: the
            # socket is full (bytes queued) and it is never read.
            def both_waiting() -> bool:
                info = recorder.endpoint.get_info(client_id)
                futures = list(recorder.current.values())
                queued = info is not None and info.send_queue_bytes > 0
                return queued and len(futures) == 2 and not any(future.done() for future in futures)

            wait_until(both_waiting)
            reset(peer.sock)
        else:
            # Read part of the stream, whole frames and all, then reset mid-stream.
            received = 0
            while received < 8 * CHUNK:
                opcode, _, payload = peer.recv_frame()
                assert opcode in (OP_BINARY, 0x0), opcode
                received += len(payload)
            reset(peer.sock)

        # Longer than the senders' own result() timeout, so that a hang shows as their TimeoutError.
        outcomes = {e[1]: e[2] for e in (nth_event(recorder, "outcome", n, 2 * PROMPTLY) for n in range(2))}
        for who, outcome in outcomes.items():
            assert isinstance(outcome, ClientException), f"{who} got {outcome!r}"
            assert not isinstance(outcome, OSError)
        assert recorder.wait_event("close")[1:] == (client_id, 1006, "Client closed underlying TCP connection")
        recorder.threads[0].join(PROMPTLY)
        assert not recorder.threads[0].is_alive()
        # A send after the reset fails (or is a no-op for a gone id); it never raises.
        late = recorder.endpoint.send(b"late", client_id).exception(PROMPTLY)
        assert late is None or isinstance(late, ClientException), repr(late)
    assert count_events(recorder, "close") == 1
    assert_no_errors(caplog)
