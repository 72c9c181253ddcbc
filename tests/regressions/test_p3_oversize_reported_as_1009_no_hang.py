"""P3: an oversize message is reported as 1009 and leaves no handler hanging.

Probe P3 (simple-websocket 1.1.0, ``max_message_size=1000``, a
5000-byte text). The wire got the right 1009 close, but the application saw
1005; in 5 connections one handler thread stayed blocked in ``receive()``
forever, because the reader thread set the wake-up Event before it marked the
connection closed; and the TCP connection stayed open (werkzeug held the fd),
so the client waited out its own timeout.

Guarantee: with a handler blocked in ``message.result()`` or ``message.read()``
(no timeout) on each of 5 connections, a fragment that takes the message over
``max_message_size`` makes every handler return with ``ClientException``;
``on_close`` gets 1009 with the reason sent on the wire; the server closes
the TCP connection itself right after its close frame (the client sees EOF
without answering, even with a long ``close_period``); every client thread
ends; nothing is logged as an error. (A single oversize frame that starts a
message, with no handler running, is tests/test_close_paths.py.)
"""

from __future__ import annotations

import threading

import pytest

from syncaerys import ClientException
from syncaerys import Message
from tests.regressions.helpers import OP_CONT
from tests.regressions.helpers import OP_TEXT
from tests.regressions.helpers import assert_no_errors
from tests.regressions.helpers import count_events
from tests.regressions.helpers import nth_event
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve

CLIENTS = 5
LIMIT = 1000
REASON = "Received payload exceeds maximum allowable size"


def blocked_reader(how: str) -> Recorder:
    """A handler that blocks in result() or read() with no timeout, as user code does."""

    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        rec.record("reading", client_id, threading.current_thread())
        try:
            if how == "result":
                message.result()
            else:
                while message.read() is not None:
                    pass
        except BaseException as error:
            rec.record("raised", client_id, error)
            raise  # let it escape, as a handler that does not catch it would
        rec.record("returned", client_id)

    return Recorder(on_data=on_data)


@pytest.mark.parametrize("how", ["result", "read"])
def test_oversize_message_reported_as_1009_and_no_handler_hangs(how: str, caplog: pytest.LogCaptureFixture) -> None:
    recorder = blocked_reader(how)
    clients: list[RawClient] = []
    # A long close_period: the server must not wait for the client's close reply
    # after failing the connection (RFC 6455 7.1.7), or the EOF below times out.
    with serve(recorder, max_message_size=LIMIT, heartbeat_period=None, close_period=10) as server:
        try:
            ids: list[int] = []
            for number in range(CLIENTS):
                clients.append(RawClient(server.port))
                ids.append(nth_event(recorder, "open", number)[1])
            # Every handler is blocked in the middle of a message, all at once.
            for client in clients:
                client.send_frame(OP_TEXT, b"a" * 600, fin=False)
            nth_event(recorder, "reading", CLIENTS - 1)
            threads = {e[1]: e[2] for e in recorder.events if e[0] == "reading"}
            assert sorted(threads) == sorted(ids)

            # 600 + 600 > 1000: refused from the continuation's header.
            for client in clients:
                client.send_frame(OP_CONT, b"b" * 600, fin=True)
            for client in clients:
                assert client.recv_close() == (1009, REASON)
                # We never answer the close: the server closes TCP by itself.
                assert client.recv_until_eof() == b""

            nth_event(recorder, "close", CLIENTS - 1)
            closes = {e[1]: e[2:] for e in recorder.events if e[0] == "close"}
            assert closes == dict.fromkeys(ids, (1009, REASON))
            raised = {e[1]: e[2] for e in recorder.events if e[0] == "raised"}
            assert sorted(raised) == sorted(ids), recorder.events
            for error in raised.values():
                assert isinstance(error, ClientException), repr(error)
                assert not isinstance(error, OSError)
            assert "returned" not in recorder.kinds()
            # No client thread is left blocked.
            for thread in threads.values():
                thread.join(PROMPTLY)
                assert not thread.is_alive(), f"{thread.name} is still running"
            assert server.gateways[0].endpoint.get_clients() == []
        finally:
            for client in clients:
                client.close()
    assert count_events(recorder, "close") == CLIENTS
    assert_no_errors(caplog)
