"""Rooms: named groups of clients, kept per process (the backplane mirrors them)."""

from __future__ import annotations

import threading

__all__ = ["Rooms"]


class Rooms:
    """A two-way map between rooms and the local clients in them, guarded by its owner's lock.

    It has no lock of its own: every method must be called holding ``lock``
    (the :class:`~syncaerys.client.registry.ClientRegistry`'s, so that a client's
    rooms and its registration change together), which each asserts. Never blocks.
    """

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._members: dict[str, set[int]] = {}
        self._rooms: dict[int, set[str]] = {}

    def join(self, client_id: int, room: str) -> bool:
        """Put a client in a room; whether that changed anything."""
        assert self._lock.locked(), "Rooms is guarded by its owner's lock"
        rooms = self._rooms.setdefault(client_id, set())
        if room in rooms:
            return False
        rooms.add(room)
        self._members.setdefault(room, set()).add(client_id)
        return True

    def leave(self, client_id: int, room: str) -> bool:
        """Take a client out of a room; whether it was in it."""
        assert self._lock.locked(), "Rooms is guarded by its owner's lock"
        rooms = self._rooms.get(client_id)
        if rooms is None or room not in rooms:
            return False
        rooms.discard(room)
        if not rooms:
            del self._rooms[client_id]
        self._discard_member(room, client_id)
        return True

    def leave_all(self, client_id: int) -> set[str]:
        """Take a client out of every room; the rooms it was in."""
        assert self._lock.locked(), "Rooms is guarded by its owner's lock"
        rooms = self._rooms.pop(client_id, set())
        for room in rooms:
            self._discard_member(room, client_id)
        return rooms

    def members(self, room: str) -> set[int]:
        """A copy of the ids in ``room``."""
        assert self._lock.locked(), "Rooms is guarded by its owner's lock"
        return set(self._members.get(room, ()))

    def rooms_of(self, client_id: int) -> set[str]:
        """A copy of the rooms ``client_id`` is in."""
        assert self._lock.locked(), "Rooms is guarded by its owner's lock"
        return set(self._rooms.get(client_id, ()))

    def snapshot(self) -> dict[str, set[int]]:
        """Every room with a copy of its members."""
        assert self._lock.locked(), "Rooms is guarded by its owner's lock"
        return {room: set(ids) for room, ids in self._members.items()}

    def _discard_member(self, room: str, client_id: int) -> None:
        assert self._lock.locked(), "Rooms is guarded by its owner's lock"
        members = self._members.get(room)
        if members is not None:
            members.discard(client_id)
            if not members:
                del self._members[room]
