"""The client registry: one gateway's clients, their rooms, and the handshakes on their way in.

Its invariants, all kept under one lock (its rooms have none of their own):

* a client is added only while the registry admits clients, so every client
  is either refused (503) or in the snapshot that :meth:`ClientRegistry.close_all`
  closes: none is missed, none is closed twice;
* the registry stops admitting only once the handshakes already admitted have
  finished (through ``on_open``) or a deadline passed, so no ``on_open`` runs
  after ``on_stop``;
* a client leaves every room when it is removed, and only a registered client
  joins one (the two happen under the same lock, so a join cannot follow a
  removal);
* the membership (the backplane) hears of every add, remove and room change.

Lookups (:meth:`ClientRegistry.get`, ``in``) read the dict without the lock:
one dict read is atomic in CPython, and a client found just as it is removed
is closing, which every caller checks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Protocol

from .rooms import Rooms

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["ClientRegistry", "ClientDirectory", "Membership"]


class Membership(Protocol):
    """Who hears of the registry's changes (the backplane mirrors them to the cluster).

    Called from handshake, client and application threads, outside the
    registry's lock: implementations must be thread-safe and must not block.
    """

    def client_opened(self, client_id: int) -> None:
        """A client was added (before its 101)."""
        ...

    def client_closed(self, client_id: int) -> None:
        """A client was removed (and is out of every room)."""
        ...

    def rooms_changed(self, client_id: int, room: str) -> None:
        """A client joined or left ``room``."""
        ...


class ClientDirectory(Protocol):
    """The registry as the :class:`~syncaerys.Endpoint` sees it: lookups and rooms.

    Every method is thread-safe and never blocks (as :class:`ClientRegistry`'s are).
    """

    def get(self, client_id: int) -> Connection | None:
        """The client with this id, open or closing; ``None`` if unknown or gone."""
        ...

    def __contains__(self, client_id: object) -> bool: ...

    def connections(self) -> list[Connection]:
        """A snapshot of every registered client, open or closing."""
        ...

    def join(self, client_id: int, room: str) -> None:
        """Put an open client in ``room``; nothing for an unknown or closing one."""
        ...

    def leave(self, client_id: int, room: str) -> None:
        """Take a client out of ``room``; nothing if it is not in it."""
        ...

    def rooms_of(self, client_id: int) -> set[str]:
        """A copy of the rooms a client is in."""
        ...

    def members(self, room: str) -> set[int]:
        """A copy of the ids in ``room``."""
        ...


class ClientRegistry:
    """The clients of one gateway, open and closing (see the module docstring).

    Every method is thread-safe. Only :meth:`close_admission` and
    :meth:`wait_until_empty` block (up to their deadline); the others hold the
    lock briefly or not at all, and tell the membership outside it.
    """

    def __init__(self, membership: Membership) -> None:
        self._membership = membership
        self._lock = threading.Lock()
        # Notified when a client is removed or a handshake finishes.
        self._changed = threading.Condition(self._lock)
        self._clients: dict[int, Connection] = {}
        #: The client with this id, open or closing; ``None`` if unknown or gone. Never blocks.
        #: (The dict's own ``get``, with no call around it: every send looks its client up.)
        self.get: Callable[[int], Connection | None] = self._clients.get
        self._rooms = Rooms(self._lock)
        self._admitting = True
        self._handshakes = 0

    # -- the way in

    def admit_handshake(self) -> bool:
        """Count a handshake in; False once the registry stopped admitting (answer 503).

        Every True must be followed by one :meth:`handshake_finished`.
        """
        with self._lock:
            if not self._admitting:
                return False
            self._handshakes += 1
            return True

    def handshake_finished(self) -> None:
        """An admitted handshake is over: refused, failed, or through ``on_open``."""
        with self._lock:
            self._handshakes -= 1
            if not self._handshakes:
                self._changed.notify_all()

    def add(self, connection: Connection) -> bool:
        """Register a client about to get its 101; False (not added) once admission stopped."""
        with self._lock:
            if not self._admitting:
                return False
            self._clients[connection.id] = connection
        self._membership.client_opened(connection.id)
        return True

    def remove(self, connection: Connection) -> None:
        """Forget a client (it leaves every room); nothing if it is not registered."""
        with self._lock:
            if self._clients.get(connection.id) is not connection:
                return
            del self._clients[connection.id]
            self._rooms.leave_all(connection.id)
            self._changed.notify_all()
        self._membership.client_closed(connection.id)

    # -- lookups

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._clients

    def __len__(self) -> int:
        return len(self._clients)

    def connections(self) -> list[Connection]:
        """A snapshot of every registered client, open or closing."""
        return list(self._clients.values())

    def client_ids(self) -> set[int]:
        """A snapshot of the registered clients' ids, open or closing."""
        return set(self._clients)

    # -- rooms

    def join(self, client_id: int, room: str) -> None:
        """Put an open client in ``room``; nothing for an unknown or closing one."""
        with self._lock:
            connection = self._clients.get(client_id)
            if connection is None or not connection.is_open or not self._rooms.join(client_id, room):
                return
        self._membership.rooms_changed(client_id, room)

    def leave(self, client_id: int, room: str) -> None:
        """Take a client out of ``room``; nothing if it is not in it."""
        with self._lock:
            left = self._rooms.leave(client_id, room)
        if left:
            self._membership.rooms_changed(client_id, room)

    def rooms_of(self, client_id: int) -> set[str]:
        """A copy of the rooms a client is in."""
        with self._lock:
            return self._rooms.rooms_of(client_id)

    def members(self, room: str) -> set[int]:
        """A copy of the ids in ``room``."""
        with self._lock:
            return self._rooms.members(room)

    def rooms(self) -> dict[str, set[int]]:
        """A copy of every room and its members."""
        with self._lock:
            return self._rooms.snapshot()

    # -- the way out

    def close_admission(self, deadline: float) -> int:
        """Stop admitting; wait (until ``deadline``, monotonic) for the admitted handshakes.

        Returns how many are still in progress when it returns (0 unless the
        deadline passed). Blocks.
        """
        with self._lock:
            self._admitting = False
            while self._handshakes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._handshakes

    def close_all(self, code: int, reason: str) -> None:
        """Start the closing handshake with every client (call after :meth:`close_admission`)."""
        with self._lock:
            connections = list(self._clients.values())
        for connection in connections:
            connection.close(code, reason)

    def wait_until_empty(self, deadline: float) -> bool:
        """Block until every client is removed or ``deadline`` (monotonic) passes; whether it is empty."""
        with self._lock:
            while self._clients:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True
