"""The client registry's invariants, without sockets: admission, the stop sequence, rooms."""

from __future__ import annotations

import threading
import time

from syncaerys.client.registry import ClientRegistry
from tests.utils import PROMPTLY


class Member:
    """Stands in for a Connection: the registry needs an id, is_open and close()."""

    def __init__(self, client_id: int) -> None:
        self.id = client_id
        self.is_open = True
        self.closed_with: tuple[int, str] | None = None

    def close(self, code: int, reason: str) -> bool:
        self.is_open = False
        self.closed_with = (code, reason)
        return True


class Heard:
    """The membership (a backplane): records what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, str]] = []

    def client_opened(self, client_id: int) -> None:
        self.events.append(("opened", client_id, ""))

    def client_closed(self, client_id: int) -> None:
        self.events.append(("closed", client_id, ""))

    def rooms_changed(self, client_id: int, room: str) -> None:
        self.events.append(("rooms", client_id, room))


def test_add_get_remove_and_the_membership_hears_each() -> None:
    heard = Heard()
    registry = ClientRegistry(heard)
    one = Member(1)
    assert registry.add(one)  # type: ignore[arg-type]
    assert registry.get(1) is one and 1 in registry and len(registry) == 1  # type: ignore[comparison-overlap]
    registry.join(1, "lobby")
    assert registry.rooms_of(1) == {"lobby"} and registry.members("lobby") == {1}
    registry.remove(one)  # type: ignore[arg-type]
    registry.remove(one)  # type: ignore[arg-type]  # twice: nothing
    assert registry.get(1) is None and registry.members("lobby") == set() and registry.rooms() == {}
    assert heard.events == [("opened", 1, ""), ("rooms", 1, "lobby"), ("closed", 1, "")]


def test_a_closing_client_joins_nothing() -> None:
    registry = ClientRegistry(Heard())
    member = Member(1)
    registry.add(member)  # type: ignore[arg-type]
    member.is_open = False
    registry.join(1, "lobby")
    registry.join(2, "lobby")  # unknown
    assert registry.rooms() == {}


def test_close_admission_waits_for_the_handshakes_in_progress() -> None:
    registry = ClientRegistry(Heard())
    assert registry.admit_handshake()
    finished = threading.Event()

    def finish_later() -> None:
        # Finish only once close_admission has stopped admitting, so that it must wait for this.
        while registry.admit_handshake():
            registry.handshake_finished()
        finished.set()
        registry.handshake_finished()

    threading.Thread(target=finish_later).start()
    assert registry.close_admission(time.monotonic() + PROMPTLY) == 0
    assert finished.is_set()
    # From here nothing new comes in.
    assert not registry.admit_handshake() and not registry.add(Member(9))  # type: ignore[arg-type]


def test_close_admission_gives_up_at_its_deadline() -> None:
    registry = ClientRegistry(Heard())
    assert registry.admit_handshake()
    assert registry.close_admission(time.monotonic() + 0.01) == 1


def test_close_all_then_wait_until_empty() -> None:
    registry = ClientRegistry(Heard())
    members = [Member(i) for i in range(3)]
    for member in members:
        registry.add(member)  # type: ignore[arg-type]
    registry.close_admission(time.monotonic())
    registry.close_all(1001, "bye")
    assert [m.closed_with for m in members] == [(1001, "bye")] * 3
    assert not registry.wait_until_empty(time.monotonic() + 0.01)
    for member in members:
        threading.Timer(0.01, registry.remove, args=(member,)).start()
    assert registry.wait_until_empty(time.monotonic() + PROMPTLY) and len(registry) == 0
