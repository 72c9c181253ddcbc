"""max_send_queue cuts off clients that stopped reading, not clients that read fast."""

from __future__ import annotations

from websockets.sync.client import connect

from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url

MiB = 1 << 20


def test_a_fast_reader_gets_messages_larger_than_max_send_queue() -> None:
    recorder = Recorder()
    with serve(recorder, max_send_queue=16 * MiB) as server, connect(url(server), max_size=None) as ws:
        _, client_id, _ = recorder.wait_event("open")
        endpoint = recorder.endpoint
        one = endpoint.send(b"a" * (20 * MiB), client_id)
        three = [endpoint.send(bytes([65 + i]) * (8 * MiB), client_id) for i in range(3)]
        assert ws.recv(timeout=4 * PROMPTLY) == b"a" * (20 * MiB)
        for i in range(3):
            assert ws.recv(timeout=4 * PROMPTLY) == bytes([65 + i]) * (8 * MiB)
        assert one.result(PROMPTLY) > 20 * MiB
        assert all(future.result(PROMPTLY) > 8 * MiB for future in three)
        ws.send("still open")
        assert ws.recv(timeout=PROMPTLY) == "still open"
    assert ("close", client_id, 1000, "") in recorder.events
