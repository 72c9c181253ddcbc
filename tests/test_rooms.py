"""Rooms on the default (in-process) backplane: join, leave, rooms_of, room_clients, broadcast(room=), close."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

import syncaerys
from syncaerys import BroadcastResult
from syncaerys import LocalBackplane
from syncaerys.client.rooms import Rooms
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url


class Clients:
    """A server with a Recorder, and a way to open clients that are closed at the end."""

    def __init__(self, server: syncaerys.Server, recorder: Recorder, stack: contextlib.ExitStack) -> None:
        self.server = server
        self.recorder = recorder
        self.endpoint = recorder.endpoint
        self._stack = stack

    def open(self) -> tuple[ClientConnection, int]:
        opened = self.recorder.kinds().count("open")
        ws = self._stack.enter_context(connect(url(self.server), open_timeout=PROMPTLY))
        events = self.recorder.wait_for(lambda events: [e for e in events if e[0] == "open"][opened:])
        return ws, int(events[0][1])


@pytest.fixture
def clients() -> Iterator[Clients]:
    recorder = Recorder()
    with serve(recorder) as server, contextlib.ExitStack() as stack:
        yield Clients(server, recorder, stack)


def test_the_default_backplane_is_local(clients: Clients) -> None:
    assert isinstance(clients.endpoint.backplane, LocalBackplane)
    assert not clients.endpoint.backplane.clustered


def test_join_leave_rooms_of_and_room_clients(clients: Clients) -> None:
    endpoint = clients.endpoint
    _, one = clients.open()
    _, two = clients.open()
    endpoint.join(one, "a")
    endpoint.join(one, "b")
    endpoint.join(two, "a")
    endpoint.join(two, "a")  # twice: no change
    assert endpoint.rooms_of(one) == {"a", "b"}
    assert endpoint.rooms_of(two) == {"a"}
    assert endpoint.room_clients("a") == sorted([one, two])
    assert endpoint.room_clients("a", local=True) == sorted([one, two])
    assert endpoint.room_clients("b") == [one]

    endpoint.leave(one, "a")
    endpoint.leave(one, "never joined")
    assert endpoint.rooms_of(one) == {"b"}
    assert endpoint.room_clients("a") == [two]
    endpoint.leave(one, "b")
    assert endpoint.rooms_of(one) == set()
    assert endpoint.room_clients("b") == []  # a room exists while it has members


def test_unknown_ids_join_nothing(clients: Clients) -> None:
    endpoint = clients.endpoint
    endpoint.join(12345, "a")
    endpoint.leave(12345, "a")
    assert endpoint.rooms_of(12345) == set()
    assert endpoint.room_clients("a") == []


def test_room_names_must_be_strings(clients: Clients) -> None:
    _, one = clients.open()
    with pytest.raises(TypeError):
        clients.endpoint.join(one, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        clients.endpoint.leave(one, None)  # type: ignore[arg-type]


def test_room_names_must_be_unicode(clients: Clients) -> None:
    """A lone surrogate cannot reach Redis: it stopped a cluster backplane's writer thread."""
    _, one = clients.open()
    for call in (
        lambda: clients.endpoint.join(one, "\ud800"),
        lambda: clients.endpoint.leave(one, "a\udcff"),
        lambda: clients.endpoint.broadcast("x", room="\ud800"),
    ):
        with pytest.raises(ValueError, match="lone surrogate"):
            call()
    assert clients.endpoint.rooms_of(one) == set()


def test_broadcast_to_a_room_reaches_only_its_members(clients: Clients) -> None:
    endpoint = clients.endpoint
    ws_one, one = clients.open()
    ws_two, two = clients.open()
    ws_out, _ = clients.open()
    endpoint.join(one, "r")
    endpoint.join(two, "r")

    result = endpoint.broadcast("members", room="r").result(PROMPTLY)
    assert result == BroadcastResult(delivered=2, failed=(), remote_nodes=0)
    assert endpoint.broadcast_binary(b"but two", except_ids=[two], room="r").result(PROMPTLY).delivered == 1
    assert endpoint.broadcast("empty room", room="nobody").result(PROMPTLY) == BroadcastResult(0, ())
    endpoint.broadcast("marker")

    assert [ws_one.recv(PROMPTLY) for _ in range(3)] == ["members", b"but two", "marker"]
    assert [ws_two.recv(PROMPTLY) for _ in range(2)] == ["members", "marker"]
    assert ws_out.recv(PROMPTLY) == "marker"


def test_a_closing_client_leaves_every_room(clients: Clients) -> None:
    endpoint = clients.endpoint
    ws, leaving = clients.open()
    _, staying = clients.open()
    endpoint.join(leaving, "a")
    endpoint.join(leaving, "b")
    endpoint.join(staying, "a")

    ws.close()
    clients.recorder.wait_for(lambda events: ("close", leaving, 1000, "") in events)
    assert endpoint.rooms_of(leaving) == set()
    assert endpoint.room_clients("a") == [staying]
    assert endpoint.room_clients("b") == []
    # A closed client cannot join again.
    endpoint.join(leaving, "a")
    assert endpoint.room_clients("a") == [staying]


def test_a_client_closed_by_the_server_leaves_every_room(clients: Clients) -> None:
    endpoint = clients.endpoint
    _, client_id = clients.open()
    endpoint.join(client_id, "a")
    endpoint.close(client_id, 4000, "out")
    clients.recorder.wait_for(lambda events: ("close", client_id, 4000, "out") in events)
    assert endpoint.room_clients("a") == []
    assert endpoint.rooms_of(client_id) == set()


def test_rooms_map_both_ways() -> None:
    lock = threading.Lock()
    rooms = Rooms(lock)
    with pytest.raises(AssertionError, match="owner's lock"):
        rooms.join(1, "a")  # its owner's lock is required (and asserted)
    lock.acquire()
    assert rooms.join(1, "a") is True
    assert rooms.join(1, "a") is False
    assert rooms.join(2, "a") is True
    assert rooms.join(1, "b") is True
    assert rooms.snapshot() == {"a": {1, 2}, "b": {1}}
    assert rooms.leave(1, "c") is False
    assert rooms.leave_all(1) == {"a", "b"}
    assert rooms.snapshot() == {"a": {2}}
    assert rooms.rooms_of(1) == set()
    assert rooms.leave(2, "a") is True
    assert rooms.snapshot() == {}
    # Copies: changing them changes nothing.
    rooms.join(3, "x")
    rooms.members("x").add(4)
    rooms.rooms_of(3).add("y")
    assert rooms.snapshot() == {"x": {3}}
