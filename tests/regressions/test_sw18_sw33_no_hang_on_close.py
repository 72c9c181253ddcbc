"""simple-websocket #18 and #33: a blocked receive is woken on every close path.

Known bug: simple-websocket #18: ``receive()`` hangs although the
connection is closed (races between the reader thread's Event and the
``connected`` flag); #33: ``receive()`` is not woken when the ping timeout
closes the connection. The P3 probe (§9) found one such race still live in
1.1.0.

Guarantee: a handler blocked in ``message.result()`` or ``message.read()``
with no timeout, in the middle of a message, returns with ``ClientException``
(never ``OSError`` or a hang) on every close path: the peer's close frame
between two fragments, a TCP drop, ``endpoint.close`` called from another
thread, the heartbeat timeout (a peer that answers nothing, so the server
drops TCP after ``close_period``) and the server's shutdown. ``on_close`` gets
the path's code once and the client's thread ends. (tests/test_message.py
has result/read on a TCP drop, a protocol error, the size limit, endpoint.close
and shutdown with a ``timeout`` given; here the handler waits without one, as
in the anchors, and every path is covered.)
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest

import syncaerys
from syncaerys import ClientException
from syncaerys import Message
from tests.regressions.helpers import OP_CLOSE
from tests.regressions.helpers import OP_TEXT
from tests.regressions.helpers import assert_no_errors
from tests.regressions.helpers import close_payload
from tests.regressions.helpers import count_events
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve

Trigger = Callable[[syncaerys.Server, Recorder, RawClient, int], None]


def peer_close_frame(server: syncaerys.Server, recorder: Recorder, client: RawClient, client_id: int) -> None:
    client.send_frame(OP_CLOSE, close_payload(1000, b"bye"))
    assert client.recv_close() == (1000, "bye")


def tcp_drop(server: syncaerys.Server, recorder: Recorder, client: RawClient, client_id: int) -> None:
    client.sock.shutdown(socket.SHUT_RDWR)


def endpoint_close_from_another_thread(
    server: syncaerys.Server, recorder: Recorder, client: RawClient, client_id: int
) -> None:
    closer = threading.Thread(target=recorder.endpoint.close, args=(client_id, 4001, "kicked"), name="closer")
    closer.start()
    closer.join(PROMPTLY)
    assert client.recv_close() == (4001, "kicked")
    client.send_frame(OP_CLOSE, close_payload(4001))


def heartbeat_timeout(server: syncaerys.Server, recorder: Recorder, client: RawClient, client_id: int) -> None:
    pass  # the peer answers nothing: pings, then the close, go unanswered


def shutdown(server: syncaerys.Server, recorder: Recorder, client: RawClient, client_id: int) -> None:
    stopper = threading.Thread(target=server.stop, name="stopper")
    stopper.start()
    assert client.recv_close() == (1001, "Server shutting down")
    client.send_frame(OP_CLOSE, close_payload(1001))
    stopper.join(PROMPTLY)
    assert not stopper.is_alive()


PATHS: dict[str, tuple[Trigger, tuple[int, str]]] = {
    "peer-close-frame": (peer_close_frame, (1000, "bye")),
    "tcp-drop": (tcp_drop, (1006, "Client closed underlying TCP connection")),
    "endpoint-close-from-another-thread": (endpoint_close_from_another_thread, (4001, "kicked")),
    "heartbeat-timeout": (heartbeat_timeout, (1008, "Exceeded unanswered PING limit")),
    "shutdown": (shutdown, (1001, "Server shutting down")),
}


def blocked_handler(how: str) -> Recorder:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        try:
            if how == "result":
                rec.record("blocked", client_id, threading.current_thread())
                message.result()
            else:
                assert message.read() == "the beginning"
                rec.record("blocked", client_id, threading.current_thread())
                while message.read() is not None:
                    pass
        except BaseException as error:
            rec.record("raised", client_id, error)
            raise
        rec.record("returned", client_id)

    return Recorder(on_data=on_data)


@pytest.mark.parametrize("how", ["result", "read"])
@pytest.mark.parametrize("path", sorted(PATHS))
def test_blocked_read_is_woken_with_client_exception(path: str, how: str, caplog: pytest.LogCaptureFixture) -> None:
    trigger, expected = PATHS[path]
    recorder = blocked_handler(how)
    options: dict[str, object] = {"heartbeat_period": None, "close_period": 0.5}
    if path == "heartbeat-timeout":
        options.update(heartbeat_period=0.1, queued_ping_limit=2, close_period=0.3)
    with serve(recorder, **options) as server, RawClient(server.port) as client:
        client.send_frame(OP_TEXT, b"the beginning", fin=False)
        _, client_id, thread = recorder.wait_event("blocked")
        trigger(server, recorder, client, client_id)
        outcome = recorder.wait_for(lambda events: next((e for e in events if e[0] in ("raised", "returned")), None))
        assert outcome[0] == "raised", f"the handler returned normally: {recorder.events}"
        assert isinstance(outcome[2], ClientException), repr(outcome[2])
        assert not isinstance(outcome[2], OSError)
        assert recorder.wait_event("close")[1:] == (client_id, *expected)
        thread.join(PROMPTLY)
        assert not thread.is_alive()
    assert count_events(recorder, "close") == 1
    assert_no_errors(caplog)
