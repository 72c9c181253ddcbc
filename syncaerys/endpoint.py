"""Endpoint: how the application talks to its clients, from any thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from .backplane import wire
from .backplane.base import Backplane
from .client.connection import Connection
from .client.fanout import open_clients
from .client.fanout import queue_copies
from .client.ids import check_client_id
from .client.info import ClientInfo
from .client.registry import ClientDirectory
from .client.registry import ClientRegistry
from .exceptions import ClientClosed
from .exceptions import NotStartedError
from .exceptions import UnknownClient
from .futures import BroadcastResult
from .futures import BroadcastTracker
from .futures import SendFuture
from .protocol.frames import OP_BINARY
from .protocol.frames import OP_TEXT
from .protocol.frames import validate_close_arguments
from .types import Data
from .websocket import Callbacks

__all__ = ["Endpoint", "ClientInfo", "LocalNode"]

logger = logging.getLogger("syncaerys.endpoint")


class Endpoint:
    """Sends to, closes and describes the clients of one gateway.

    You never construct one: each gateway has its own, handed to ``on_start``
    (keep it as ``self.endpoint``) and readable as ``gateway.endpoint``.

    Every method is safe to call from any thread (handler threads, your own
    threads, the ``on_start``/``on_stop`` threads) and returns without waiting
    for a slow client: sends are queued per client and the returned
    :class:`~syncaerys.SendFuture` tells when they are written. Per-client
    order equals call order, across all methods.

    With a cluster backplane (:class:`~syncaerys.RedisBackplane`) every method
    also reaches the clients of the other processes: an operation is
    published once and each process applies it to its own clients. The
    futures of remote operations resolve when the operation is published
    (delivery to other processes is at most once) and fail with
    :class:`~syncaerys.BackplaneError` while the backplane is down. Only the
    queries that read the cluster wait, for Redis: :meth:`get_clients` and
    :meth:`room_clients` (unless ``local``), and :meth:`rooms_of` and
    :meth:`get_info` of another process's client. Every other method never
    blocks.

    One rule before the gateway has started: every method, the queries
    (:meth:`get_clients`, :meth:`rooms_of`...) as the sends, raises
    :class:`~syncaerys.NotStartedError` (a query's empty answer would look like
    a server without clients).
    """

    def __init__(self, clients: ClientDirectory, backplane: Backplane, started: threading.Event) -> None:
        # Built by the gateway, which owns the registry behind ``clients``.
        self._clients = clients
        self._backplane = backplane
        # Set by the gateway when it starts; sends before that are a mistake worth an error.
        self._started = started

    @property
    def backplane(self) -> Backplane:
        """The backplane that carries operations to other processes. Thread-safe; never blocks."""
        return self._backplane

    def _check_started(self) -> None:
        if not self._started.is_set():
            raise NotStartedError(
                "the gateway has not started yet, so no client can be reached: it starts with syncaerys.run() or "
                "Server, at a Flask app's first request (syncaerys.flask.Websockets), or when you call "
                "gateway.start() (sockets.start() for the Flask extension)"
            )

    # -- sending to one client

    def send(self, data: Data, client_id: int) -> SendFuture[int]:
        """Send a message: ``str`` as text, bytes-like as binary.

        Thread-safe; never blocks (the frames are queued). The future resolves
        to the number of bytes written (all frames) once they are on the
        socket, and fails naming the id with :class:`~syncaerys.ClientClosed` if the
        client is closing or goes away first, :class:`~syncaerys.UnknownClient` if
        no client has that id (both are :class:`ClientException`; unlike Aerys, whose future
        resolves: a send that reached nobody must not look like one that
        worked). A ``client_id`` that is not an ``int`` (say ``"2"`` from a
        query string) raises :class:`TypeError`.
        """
        if isinstance(data, str):
            return self._send(OP_TEXT, data.encode("utf-8"), client_id)
        return self._send(OP_BINARY, _as_bytes(data), client_id)

    def send_binary(self, data: Data, client_id: int) -> SendFuture[int]:
        """Send a binary message whatever the type of ``data`` (``str`` as UTF-8). Thread-safe; never blocks."""
        payload = data.encode("utf-8") if isinstance(data, str) else _as_bytes(data)
        return self._send(OP_BINARY, payload, client_id)

    def _send(self, opcode: int, payload: bytes, client_id: int) -> SendFuture[int]:
        if type(client_id) is not int:
            check_client_id(client_id)
        connection = self._clients.get(client_id)
        if connection is None:
            self._check_started()
            if self._backplane.is_local(client_id):
                return SendFuture.failed(UnknownClient(f"client {client_id} is not open (closed or never seen)"))
            op = wire.Operation(wire.SEND, binary=opcode == OP_BINARY, payload=payload, client_ids=(client_id,))
            return self._backplane.publish(op, client_id)
        future = connection.send_message(opcode, payload) if connection.is_open else None
        if future is None:
            return SendFuture.failed(ClientClosed(f"client {client_id} is closing"))
        return future

    # -- sending to many

    def broadcast(
        self, data: Data, except_ids: Iterable[int] = (), *, room: str | None = None
    ) -> SendFuture[BroadcastResult]:
        """Send to every open client not in ``except_ids`` (only those in ``room`` if given).

        The frames are encoded once and the same bytes go to every socket.
        Closing clients are skipped. The future resolves to a
        :class:`~syncaerys.BroadcastResult`; it fails (with
        :class:`~syncaerys.BackplaneError`) only when a cluster backplane
        could not publish it to the other processes. Thread-safe; never blocks.
        """
        return self._broadcast(data, except_ids, room, binary=False)

    def broadcast_binary(
        self, data: Data, except_ids: Iterable[int] = (), *, room: str | None = None
    ) -> SendFuture[BroadcastResult]:
        """:meth:`broadcast` as a binary message whatever the type of ``data``. Thread-safe; never blocks."""
        return self._broadcast(data, except_ids, room, binary=True)

    def _broadcast(
        self, data: Data, except_ids: Iterable[int], room: str | None, *, binary: bool
    ) -> SendFuture[BroadcastResult]:
        excluded = set(except_ids)
        for client_id in excluded:
            check_client_id(client_id, "except_ids")
        if room is not None:
            _check_room(room)
        self._check_started()
        opcode, payload = _encode(data, binary)
        publishes: list[tuple[wire.Operation, int | None]] = []
        if self._backplane.clustered:
            op = wire.Operation(
                wire.BROADCAST, binary=opcode == OP_BINARY, payload=payload, except_ids=tuple(excluded), room=room
            )
            publishes.append((op, None))
        return self._fan_out(opcode, payload, self._local_targets(excluded, room), publishes)

    def _local_targets(self, excluded: set[int], room: str | None) -> list[Connection]:
        clients = self._clients
        if room is None:
            candidates = clients.connections()
        else:
            candidates = [c for c in map(clients.get, clients.members(room)) if c is not None]
        return open_clients(candidates, excluded)

    def multicast(self, data: Data, client_ids: Iterable[int]) -> SendFuture[BroadcastResult]:
        """Send to the listed clients; unknown and closing ids count as failed.

        With a cluster backplane, ids of other processes are published to
        their processes and are not counted in the result. Thread-safe; never blocks.
        """
        return self._multicast(data, client_ids, binary=False)

    def multicast_binary(self, data: Data, client_ids: Iterable[int]) -> SendFuture[BroadcastResult]:
        """:meth:`multicast` as a binary message whatever the type of ``data``. Thread-safe; never blocks."""
        return self._multicast(data, client_ids, binary=True)

    def _multicast(self, data: Data, client_ids: Iterable[int], *, binary: bool) -> SendFuture[BroadcastResult]:
        opcode, payload = _encode(data, binary)
        clients = self._clients
        backplane = self._backplane
        targets: list[Connection | int] = []
        remote: dict[int, list[int]] = {}
        self._check_started()
        for client_id in dict.fromkeys(client_ids):
            if type(client_id) is not int:
                check_client_id(client_id, "client_ids")
            connection = clients.get(client_id)
            if connection is None and not backplane.is_local(client_id):
                remote.setdefault(wire.node_of(client_id), []).append(client_id)
            else:
                # A closing client is counted as failed, like an unknown one.
                targets.append(connection if connection is not None and connection.is_open else client_id)
        publishes: list[tuple[wire.Operation, int | None]] = [
            (wire.Operation(wire.MULTICAST, binary=opcode == OP_BINARY, payload=payload, client_ids=tuple(ids)), ids[0])
            for ids in remote.values()
        ]
        return self._fan_out(opcode, payload, targets, publishes)

    def _fan_out(
        self,
        opcode: int,
        payload: bytes,
        targets: list[Connection] | list[Connection | int],
        publishes: Sequence[tuple[wire.Operation, int | None]] = (),
    ) -> SendFuture[BroadcastResult]:
        future: SendFuture[BroadcastResult] = SendFuture()
        tracker = BroadcastTracker(future, len(targets), len(publishes))
        for op, client_id in publishes:
            self._backplane.publish(op, client_id).add_done_callback(tracker.published)
        queue_copies(opcode, payload, targets, tracker)
        return future

    # -- the rest

    def close(self, client_id: int, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake with a client and return at once.

        Thread-safe; never blocks. Raises :class:`ValueError` for a code an
        endpoint may not send or a reason longer than 123 UTF-8 bytes, and
        :class:`TypeError` for a ``client_id`` that is not an ``int``.
        Unknown or closing ids: nothing (the client is, or will be, closed).
        """
        self._check_started()
        check_client_id(client_id)
        validate_close_arguments(code, reason)
        connection = self._clients.get(client_id)
        if connection is not None:
            connection.close(code, reason)
        elif not self._backplane.is_local(client_id):
            self._publish_to(client_id, wire.Operation(wire.CLOSE, client_ids=(client_id,), code=code, reason=reason))

    def get_info(self, client_id: int) -> ClientInfo | None:
        """A snapshot of a client's statistics; ``None`` for an unknown id.

        For a client of another process (cluster backplane) this asks that
        process and waits for its answer (at most the backplane's
        ``request_timeout``); ``None`` if it does not answer in time.
        Thread-safe; blocks only for such a remote client. A ``client_id``
        that is not an ``int`` raises :class:`TypeError`.
        """
        self._check_started()
        check_client_id(client_id)
        connection = self._clients.get(client_id)
        if connection is None:
            if self._backplane.is_local(client_id):
                return None
            reply = self._backplane.remote_info(client_id)
            return None if reply is None else ClientInfo.from_dict(reply)
        return connection.info()

    def client_data(self, client_id: int) -> dict[str, Any]:
        """A dict of your own for one client of this process, kept from its handshake to the end of ``on_close``.

        The place for what a flask-sock handler kept in local variables (the user,
        the room, a counter): ``self.endpoint.client_data(client_id)["user"] = user``
        in ``on_open``, read in ``on_data`` and ``on_close``; it goes away with the
        client, so there is no dict keyed by client id, no lock around it and no
        cleanup to write. Getting it is thread-safe and never blocks; the dict is a
        plain ``dict``: the client's own callbacks (one at a time) may use it freely,
        other threads reading and writing it at the same time need a lock of their own.
        Raises :class:`~syncaerys.UnknownClient` for a client that is gone or unknown, or that
        another process of a cluster serves (its data lives there), and
        :class:`TypeError` for a ``client_id`` that is not an ``int``.
        """
        self._check_started()
        check_client_id(client_id)
        connection = self._clients.get(client_id)
        if connection is None:
            raise UnknownClient(
                f"client {client_id} is not a client of this process (gone after on_close, never seen, "
                "or served by another process of the cluster, which holds its data)"
            )
        return connection.user_data()

    def get_clients(self, *, local: bool = False) -> list[int]:
        """The ids of the open clients (closing ones excluded).

        With a cluster backplane this includes the clients of every live
        process (as they last reported them), unless ``local`` is true. While
        the backplane is down it returns the local clients only. Thread-safe;
        never blocks, except that the cluster's clients are read from Redis (a
        few round trips, each at most the backplane's ``request_timeout``).
        """
        self._check_started()
        ids = [c.id for c in self._clients.connections() if c.is_open]
        if not local and self._backplane.clustered:
            ids.extend(self._backplane.cluster_clients())
        return ids

    # -- rooms

    def join(self, client_id: int, room: str) -> None:
        """Put a client in ``room`` (nothing if it is unknown or already there).

        Rooms exist while they have members; a client leaves all of them
        when it closes. A client of another process is joined by its process.
        Thread-safe; never blocks.
        """
        self._check_started()
        check_client_id(client_id)
        _check_room(room)
        if client_id in self._clients:
            self._clients.join(client_id, room)
        elif not self._backplane.is_local(client_id):
            self._publish_to(client_id, wire.Operation(wire.JOIN, client_ids=(client_id,), room=room))

    def leave(self, client_id: int, room: str) -> None:
        """Take a client out of ``room`` (nothing if it is not in it). Thread-safe; never blocks."""
        self._check_started()
        check_client_id(client_id)
        _check_room(room)
        if self._is_here(client_id):
            self._clients.leave(client_id, room)
        else:
            self._publish_to(client_id, wire.Operation(wire.LEAVE, client_ids=(client_id,), room=room))

    def rooms_of(self, client_id: int) -> set[str]:
        """The rooms a client is in (empty for an unknown id).

        Thread-safe; never blocks for a client of this process. Another
        process's client is looked up in Redis (one round trip, at most the
        backplane's ``request_timeout``).
        """
        self._check_started()
        check_client_id(client_id)
        if self._is_here(client_id):
            return self._clients.rooms_of(client_id)
        return self._backplane.remote_rooms(client_id)

    def room_clients(self, room: str, *, local: bool = False) -> list[int]:
        """The ids of the clients in ``room``, across the cluster unless ``local``.

        Thread-safe; never blocks, except that the cluster's members are read
        from Redis (a few round trips, each at most the backplane's ``request_timeout``).
        """
        self._check_started()
        ids = sorted(self._clients.members(room))
        if not local and self._backplane.clustered:
            ids.extend(self._backplane.cluster_room(room))
        return ids

    def _is_here(self, client_id: int) -> bool:
        """Whether ``client_id`` is (or was) a client of this process."""
        return client_id in self._clients or self._backplane.is_local(client_id)

    def _publish_to(self, client_id: int, op: wire.Operation) -> None:
        # close, join and leave return nothing, so a failure to reach the other process is logged.
        self._backplane.publish(op, client_id).add_done_callback(_log_unpublished)

    # -- operations from other processes (called by the backplane, through LocalNode)

    def _apply(self, op: wire.Operation) -> None:
        """Apply an operation published by another process to the local clients."""
        opcode = OP_BINARY if op.binary else OP_TEXT
        kind = op.kind
        clients = self._clients
        if kind == wire.BROADCAST:
            self._fan_out(opcode, op.payload, self._local_targets(set(op.except_ids), op.room))
        elif kind in (wire.SEND, wire.MULTICAST):
            targets = [c for c in map(clients.get, op.client_ids) if c is not None and c.is_open]
            self._fan_out(opcode, op.payload, targets)
        elif kind == wire.CLOSE:
            for client_id in op.client_ids:
                connection = clients.get(client_id)
                if connection is not None:
                    connection.close(op.code, op.reason)
        elif kind == wire.JOIN and op.room is not None:
            for client_id in op.client_ids:
                clients.join(client_id, op.room)
        elif kind == wire.LEAVE and op.room is not None:
            for client_id in op.client_ids:
                clients.leave(client_id, op.room)


class LocalNode:
    """This process as the backplane sees it: the :class:`~syncaerys.backplane.base.LocalNode` protocol.

    Built by the gateway. Thread-safe; never blocks (``availability_changed``
    runs the handler's ``on_backplane_up``/``on_backplane_down``).
    """

    def __init__(self, endpoint: Endpoint, clients: ClientRegistry, callbacks: Callbacks) -> None:
        self._endpoint = endpoint
        self._clients = clients
        self._callbacks = callbacks

    def apply(self, op: wire.Operation) -> None:
        """Apply another process's operation to the local clients."""
        self._endpoint._apply(op)

    def describe(self, client_id: int) -> dict[str, Any] | None:
        """A local client's :class:`ClientInfo` as a dict; ``None`` if it is not here."""
        connection = self._clients.get(client_id)
        return None if connection is None else connection.info().as_dict()

    def client_ids(self) -> set[int]:
        """The local clients' ids, open or closing."""
        return self._clients.client_ids()

    def rooms(self) -> dict[str, set[int]]:
        """Every local room and its members."""
        return self._clients.rooms()

    def rooms_of(self, client_id: int) -> set[str]:
        """The rooms of a local client."""
        return self._clients.rooms_of(client_id)

    def members(self, room: str) -> set[int]:
        """The local members of ``room``."""
        return self._clients.members(room)

    def availability_changed(self, up: bool) -> None:
        """The backplane came up (``True``) or went down."""
        try:
            if up:
                self._callbacks.on_backplane_up()
            else:
                self._callbacks.on_backplane_down()
        except Exception:
            logger.exception("exception in on_backplane_%s", "up" if up else "down")


def _log_unpublished(future: SendFuture[int]) -> None:
    error = future.exception()
    if error is not None:
        logger.warning("a remote close/join/leave was not published: %s", error)


def _encode(data: Data, binary: bool) -> tuple[int, bytes]:
    if isinstance(data, str):
        return (OP_BINARY if binary else OP_TEXT), data.encode("utf-8")
    return OP_BINARY, _as_bytes(data)


def _check_room(room: str) -> None:
    if not isinstance(room, str):
        raise TypeError(f"room must be a str, not {type(room).__name__}")
    try:
        room.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be written to Redis or sent to another process.
        raise ValueError(f"room {room!r} is not valid Unicode (it has a lone surrogate)") from None


def _as_bytes(data: Data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be str, bytes, bytearray or memoryview, not {type(data).__name__}")
