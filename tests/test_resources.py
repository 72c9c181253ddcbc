"""Threads and file descriptors per client: N + a small constant, nothing left behind (docs/threads.md)."""

from __future__ import annotations

import contextlib
import threading

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from syncaerys.client.sendqueue import shared_flusher
from syncaerys.client.timer import shared_timer
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import open_fds
from tests.utils import serve
from tests.utils import url
from tests.utils import wait_until

CLIENTS = 50
#: Process-wide threads that start with the first client and then stay.
PROCESS_WIDE = {"syncaerys-timer", "syncaerys-flusher"}
#: The server's request threads: as many as requests at once, kept idle for the next ones
#: (serving/request_threads.py), ended with the server.
REQUEST_THREAD = "syncaerys-http"


def new_threads(baseline: set[threading.Thread], clients: list[ClientConnection]) -> list[threading.Thread]:
    """Live threads started since ``baseline`` that are not the test's own clients'."""
    client_threads: set[threading.Thread] = set()
    for ws in clients:
        client_threads.add(ws.recv_events_thread)
        keepalive = getattr(ws, "keepalive_thread", None)
        if keepalive is not None:
            client_threads.add(keepalive)
    return [t for t in threading.enumerate() if t not in baseline and t not in client_threads]


def names(threads: list[threading.Thread]) -> list[str]:
    return sorted(t.name for t in threads)


def count(recorder: Recorder, kind: str) -> int:
    return len([e for e in recorder.events if e[0] == kind])


def test_one_thread_per_client_and_nothing_left_after_close() -> None:
    # The process-wide timer and flusher objects (the flusher holds a selector
    # and a socketpair) exist before the baseline; their threads start lazily.
    shared_timer()
    shared_flusher()
    baseline_threads = set(threading.enumerate())
    baseline_count = threading.active_count()
    baseline_fds = open_fds()

    recorder = Recorder()
    with serve(recorder) as server:
        gateway = server.gateways[0]
        clients: list[ClientConnection] = []
        # What the server holds with no client: its accept loop's thread, its listener.
        serving_threads = set(new_threads(baseline_threads, clients))
        serving_fds = open_fds()

        def per_client_threads() -> list[threading.Thread]:
            """Threads started since the server was serving, but the process-wide and request ones."""
            return [
                t
                for t in new_threads(baseline_threads, clients)
                if t not in serving_threads and t.name not in PROCESS_WIDE and t.name != REQUEST_THREAD
            ]

        def request_threads() -> list[threading.Thread]:
            return [t for t in new_threads(baseline_threads, clients) if t.name == REQUEST_THREAD]

        with contextlib.ExitStack() as stack:
            for _ in range(CLIENTS):
                clients.append(stack.enter_context(connect(url(server), ping_interval=None, open_timeout=PROMPTLY)))
            recorder.wait_for(lambda events: count(recorder, "open") == CLIENTS)

            extra = new_threads(baseline_threads, clients)
            # The clients connected one after the other: their upgrade requests could share one
            # request thread, which handed each client to a thread of its own.
            assert 1 <= len(request_threads()) <= CLIENTS, names(extra)
            client_thread_count = sum(t.is_alive() for t in {ws.recv_events_thread for ws in clients})
            server_thread_count = threading.active_count() - baseline_count - client_thread_count
            assert CLIENTS <= server_thread_count - len(request_threads()) <= CLIENTS + 6, names(extra)
            # Exactly one thread per client, besides the accept loop, the timer, the flusher and
            # the idle request threads.
            assert len(per_client_threads()) == CLIENTS, names(extra)
            assert {t.name for t in per_client_threads()} == {"syncaerys-client"}
            assert sorted(gateway.endpoint.get_clients()) == sorted(e[1] for e in recorder.events if e[0] == "open")

            # Every client answers; nothing is stuck behind another.
            for number, ws in enumerate(clients):
                ws.send(f"hello {number}")
            for number, ws in enumerate(clients):
                assert ws.recv(timeout=PROMPTLY) == f"hello {number}"
        # The ExitStack closed every client (closing handshake done client-side).
        recorder.wait_for(lambda events: count(recorder, "close") == CLIENTS)
        assert sorted(e[2] for e in recorder.events if e[0] == "close") == [1000] * CLIENTS

        assert gateway.endpoint.get_clients() == []
        assert gateway.connection_count() == 0

        # Thread and descriptor counts have no event: poll them, bounded.
        try:
            wait_until(lambda: not per_client_threads())
        except AssertionError:
            raise AssertionError(f"threads left: {names(per_client_threads())}") from None
        assert not any(t.is_alive() for t in {ws.recv_events_thread for ws in clients})

        try:
            wait_until(lambda: set(open_fds()) <= set(serving_fds))
        except AssertionError:
            leaked = {fd: target for fd, target in open_fds().items() if fd not in serving_fds}
            raise AssertionError(f"descriptors left while serving: {leaked}") from None

    # After the stop: only the process-wide timer and flusher threads remain (the stop ends the
    # idle request threads).
    def back_to_baseline() -> bool:
        return all(t.name in PROCESS_WIDE for t in new_threads(baseline_threads, clients))

    try:
        wait_until(back_to_baseline)
    except AssertionError:
        raise AssertionError(f"threads left: {names(new_threads(baseline_threads, clients))}") from None
    assert threading.active_count() <= baseline_count + len(PROCESS_WIDE)

    def fds_back_to_baseline() -> bool:
        return set(open_fds()) <= set(baseline_fds)

    try:
        wait_until(fds_back_to_baseline)
    except AssertionError:
        leaked = {fd: target for fd, target in open_fds().items() if fd not in baseline_fds}
        raise AssertionError(f"descriptors left after the stop: {leaked}") from None
    assert len(open_fds()) <= len(baseline_fds)


def test_registry_is_empty_after_clients_close_and_after_a_server_close() -> None:
    def on_data(rec: Recorder, client_id: int, message: object) -> None:
        rec.endpoint.close(client_id, 4000, "bye")

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server:
        gateway = server.gateways[0]
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(connect(url(server), ping_interval=None)) for _ in range(10)]
            recorder.wait_for(lambda events: count(recorder, "open") == 10)
            assert len(gateway.endpoint.get_clients()) == 10
            assert gateway.connection_count() == 10
            # Half close themselves, the server closes the other half.
            for ws in clients[:5]:
                ws.close()
            for ws in clients[5:]:
                ws.send("close me")
            recorder.wait_for(lambda events: count(recorder, "close") == 10)
        codes = sorted(e[2] for e in recorder.events if e[0] == "close")
        assert codes == [1000] * 5 + [4000] * 5
        assert gateway.endpoint.get_clients() == []
        assert gateway.connection_count() == 0
        for event in recorder.events:
            if event[0] == "open":
                assert gateway.endpoint.get_info(event[1]) is None
