"""Sends that reach nobody fail loudly; ids are ints; the endpoint before its gateway started."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.sync.client import connect

import syncaerys
from syncaerys import ClientException
from syncaerys import NotStartedError
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url


def test_a_client_id_that_is_not_an_int_is_a_type_error() -> None:
    recorder = Recorder()
    with serve(recorder) as server, connect(url(server)) as ws:
        _, client_id, _ = recorder.wait_event("open")
        endpoint = recorder.endpoint
        as_text: Any = str(client_id)
        calls = [
            lambda: endpoint.send("x", as_text),
            lambda: endpoint.send_binary(b"x", as_text),
            lambda: endpoint.close(as_text),
            lambda: endpoint.get_info(as_text),
            lambda: endpoint.join(as_text, "room"),
            lambda: endpoint.leave(as_text, "room"),
            lambda: endpoint.rooms_of(as_text),
            lambda: endpoint.multicast("x", [client_id, as_text]),
            lambda: endpoint.broadcast("x", except_ids=[as_text]),
            lambda: endpoint.send("x", True),
            lambda: endpoint.send("x", float(client_id)),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(TypeError, match="must be an int"):
                call()  # type: ignore[no-untyped-call]
        # Nothing of the above reached the client: the next frame is this one.
        endpoint.send("after", client_id)
        assert ws.recv(timeout=PROMPTLY) == "after"


def test_a_str_id_error_says_how_to_fix_it() -> None:
    recorder = Recorder()
    with serve(recorder), pytest.raises(TypeError, match=r"convert it with int\(\)"):
        recorder.endpoint.send("x", "2")  # type: ignore[arg-type]


def test_a_send_to_a_closed_client_fails_naming_it() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        with connect(url(server)) as ws:
            _, client_id, _ = recorder.wait_event("open")
            ws.close()
        recorder.wait_event("close")
        endpoint = recorder.endpoint
        for future in (endpoint.send("late", client_id), endpoint.send_binary(b"late", client_id)):
            error = future.exception(timeout=0)
            assert isinstance(error, ClientException)
            assert str(client_id) in str(error)
        result = endpoint.multicast("late", [client_id]).result(timeout=PROMPTLY)
        assert result.delivered == 0 and result.failed == (client_id,)


def test_the_endpoint_before_the_gateway_started_raises_not_started() -> None:
    gateway = syncaerys.websocket(Recorder())
    endpoint = gateway.endpoint
    for call in (
        lambda: endpoint.send("x", 1),
        lambda: endpoint.broadcast("x"),
        lambda: endpoint.multicast("x", [1]),
        # One rule for all: get_clients() answered [] (a server without clients) while send raised.
        lambda: endpoint.get_clients(),
        lambda: endpoint.get_clients(local=True),
        lambda: endpoint.room_clients("lobby"),
        lambda: endpoint.rooms_of(1),
        lambda: endpoint.get_info(1),
        lambda: endpoint.join(1, "lobby"),
        lambda: endpoint.leave(1, "lobby"),
        lambda: endpoint.close(1),
    ):
        with pytest.raises(NotStartedError, match=r"gateway.start\(\)"):
            call()
    assert issubclass(NotStartedError, RuntimeError)
    gateway.start()
    try:
        assert endpoint.broadcast("nobody yet").result(timeout=PROMPTLY).delivered == 0
        assert endpoint.get_clients() == [] and endpoint.rooms_of(1) == set()
    finally:
        gateway.stop()


def test_a_handler_endpoint_read_before_on_start_names_the_cause() -> None:
    class Pusher(syncaerys.Websocket):
        pass

    with pytest.raises(NotStartedError, match="on_start"):
        Pusher().endpoint.broadcast("x")
