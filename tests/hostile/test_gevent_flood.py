"""On gevent, a client streaming tiny frames does not freeze the others (rate limits and message_timeout off).

gevent's recv and send return without switching greenlets while data flows,
so the parse loop never let the hub run: a second client waited 7.5-17.9 s
for connect plus one echo, and with both rate limits off none got a handshake
within 10 s. The connection now yields to the hub every GEVENT_YIELD_EVERY frames.
(message_timeout, on by default, also polls the socket while a message is in
progress, which lets the hub run: it is off here, to test the yield alone.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("gevent")

from websockets.sync.client import connect

from tests.test_gevent import HOST
from tests.test_gevent import serving
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import client_frame

OP_CONT = 0x0
OP_TEXT = 0x1


def test_a_flood_of_tiny_frames_leaves_room_for_another_client(tmp_path: Path) -> None:
    with serving(tmp_path, str(HOST), "PORT", "--no-limits") as served:
        flooder = RawClient(served.port)
        assert flooder.status == 101
        stop = threading.Event()
        # One message that never ends: empty fragments, each parsed, none completing it (nothing to echo).
        flooder.send(client_frame(OP_TEXT, b"x", fin=False))
        burst = client_frame(OP_CONT, b"", fin=False) * 4096

        def flood() -> None:
            try:
                while not stop.is_set():
                    flooder.send(burst)
            except OSError:
                pass

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        try:
            started = time.monotonic()
            with connect(f"ws://127.0.0.1:{served.port}/", open_timeout=PROMPTLY) as ws:
                ws.send("hello")
                assert ws.recv(timeout=PROMPTLY) == "echo: hello"
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            flooder.close()
            thread.join(PROMPTLY)
        assert elapsed < 2.0, f"the second client took {elapsed:.1f} s"
