"""Endpoint: how the application talks to its clients, from any thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import fields
from typing import Any

from .backplane import wire
from .backplane.base import Backplane
from .backplane.base import LocalBackplane
from .connection import OPEN
from .connection import Connection
from .exceptions import ClientException
from .exceptions import NotStartedError
from .futures import BroadcastResult
from .futures import BroadcastTracker
from .futures import SendFuture
from .ids import check_client_id
from .protocol.frames import OP_BINARY
from .protocol.frames import OP_TEXT
from .protocol.frames import validate_close_arguments
from .rooms import Rooms

__all__ = ["Endpoint", "ClientInfo"]

logger = logging.getLogger("syncaerys")

Data = str | bytes | bytearray | memoryview


@dataclass(frozen=True)
class ClientInfo:
    """A snapshot of one client's statistics (Aerys's ``getInfo`` and more).

    Timestamps are Unix seconds as floats; 0.0 means "never".
    """

    bytes_read: int
    bytes_sent: int
    frames_read: int
    frames_sent: int
    messages_read: int
    messages_sent: int
    connected_at: float
    closed_at: float
    close_code: int | None
    close_reason: str | None
    last_read_at: float
    last_sent_at: float
    last_data_read_at: float
    last_data_sent_at: float
    remote_address: str
    subprotocol: str | None
    compression: bool
    send_queue_bytes: int
    pings_sent: int
    pongs_received: int
    latency: float | None

    def as_dict(self) -> dict[str, Any]:
        """The same fields as a plain ``dict``."""
        return asdict(self)


class Endpoint:
    """Sends to, closes and describes the clients of one gateway.

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
    :class:`~syncaerys.BackplaneError` while the backplane is down.
    """

    def __init__(self, backplane: Backplane | None = None, started: threading.Event | None = None) -> None:
        # Set by the gateway when it starts; sends before that are a mistake worth an error.
        self._started = started if started is not None else threading.Event()
        # Guards changes to _clients; lookups read the dict without it.
        self._lock = threading.Lock()
        self._clients: dict[int, Connection] = {}
        self._rooms = Rooms()
        self._backplane: Backplane = backplane if backplane is not None else LocalBackplane()
        self._backplane.attach(self)
        # Called with True/False when the backplane comes up or goes down.
        self._backplane_listeners: list[Callable[[bool], object]] = []

    @property
    def backplane(self) -> Backplane:
        """The backplane that carries operations to other processes."""
        return self._backplane

    def _check_started(self) -> None:
        if not self._started.is_set():
            raise NotStartedError(
                "the gateway has not started yet, so no client can be reached: it starts with syncaerys.run() or "
                "Server, at a Flask app's first request (syncaerys.flask.Websockets), or when you call "
                "gateway.start() (sockets.start() for the Flask extension)"
            )

    # -- registry (used by the gateway)

    def _next_client_id(self) -> int:
        return self._backplane.next_client_id()

    def _register(self, connection: Connection) -> None:
        with self._lock:
            self._clients[connection.id] = connection
        self._backplane.client_opened(connection.id)

    def _unregister(self, connection: Connection) -> None:
        with self._lock:
            if self._clients.get(connection.id) is not connection:
                return
            del self._clients[connection.id]
        self._rooms.leave_all(connection.id)
        self._backplane.client_closed(connection.id)

    def _connections(self) -> list[Connection]:
        return list(self._clients.values())

    # -- sending to one client

    def send(self, data: Data, client_id: int) -> SendFuture[int]:
        """Send a message: ``str`` as text, bytes-like as binary.

        Thread-safe; never blocks (the frames are queued). The future resolves
        to the number of bytes written (all frames) once they are on the
        socket, and fails with :class:`ClientException` naming the id if the
        client is closing, gone or unknown (unlike Aerys, whose future
        resolves: a send that reached nobody must not look like one that
        worked). A ``client_id`` that is not an ``int`` (say ``"2"`` from a
        query string) raises :class:`TypeError`.
        """
        if isinstance(data, str):
            return self._send(OP_TEXT, data.encode("utf-8"), client_id)
        return self._send(OP_BINARY, _as_bytes(data), client_id)

    def send_binary(self, data: Data, client_id: int) -> SendFuture[int]:
        """Send a binary message whatever the type of ``data`` (``str`` as UTF-8)."""
        payload = data.encode("utf-8") if isinstance(data, str) else _as_bytes(data)
        return self._send(OP_BINARY, payload, client_id)

    def _send(self, opcode: int, payload: bytes, client_id: int) -> SendFuture[int]:
        if type(client_id) is not int:
            check_client_id(client_id)
        connection = self._clients.get(client_id)
        if connection is None:
            self._check_started()
            if self._backplane.is_local(client_id):
                return SendFuture.failed(ClientException(f"client {client_id} is not open (closed or never seen)"))
            op = wire.Operation(wire.SEND, binary=opcode == OP_BINARY, payload=payload, client_ids=(client_id,))
            return self._backplane.publish(op, client_id)
        if connection.state != OPEN:
            return SendFuture.failed(ClientException(f"client {client_id} is closing"))
        future: SendFuture[int] = SendFuture()
        if not connection.send_frames(connection.frames_for(opcode, payload), future):
            future._fail(client_id, ClientException(f"client {client_id} is closing"))
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
        could not publish it to the other processes.
        """
        return self._broadcast(data, except_ids, room, binary=False)

    def broadcast_binary(
        self, data: Data, except_ids: Iterable[int] = (), *, room: str | None = None
    ) -> SendFuture[BroadcastResult]:
        """:meth:`broadcast` as a binary message whatever the type of ``data``."""
        return self._broadcast(data, except_ids, room, binary=True)

    def _broadcast(
        self, data: Data, except_ids: Iterable[int], room: str | None, *, binary: bool
    ) -> SendFuture[BroadcastResult]:
        excluded = set(except_ids)
        for client_id in excluded:
            check_client_id(client_id, "except_ids")
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
        if room is None:
            candidates = list(self._clients.values())
        else:
            clients = self._clients
            candidates = [c for c in map(clients.get, self._rooms.members(room)) if c is not None]
        return [c for c in candidates if c.state == OPEN and c.id not in excluded]

    def multicast(self, data: Data, client_ids: Iterable[int]) -> SendFuture[BroadcastResult]:
        """Send to the listed clients; unknown and closing ids count as failed.

        With a cluster backplane, ids of other processes are published to
        their processes and are not counted in the result.
        """
        return self._multicast(data, client_ids, binary=False)

    def multicast_binary(self, data: Data, client_ids: Iterable[int]) -> SendFuture[BroadcastResult]:
        """:meth:`multicast` as a binary message whatever the type of ``data``."""
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
                targets.append(client_id if connection is None else connection)
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
        # Encoded once per kind of client (frame size, compression parameters).
        encoded: dict[Hashable, list[bytes]] = {}
        size = len(payload)
        for target in targets:
            if not isinstance(target, Connection) or target.state != OPEN:
                tracker.skip(target if isinstance(target, int) else target.id)
                continue
            key = target.encoding_key(size)
            frames: list[bytes] | Callable[[], list[bytes]]
            if key is None:
                frames = target.frames_for(opcode, payload)
            else:
                shared = encoded.get(key)
                if shared is None:
                    shared = encoded[key] = target.shared_frames(opcode, payload)
                frames = shared
            if not target.send_frames(frames, tracker):
                tracker.skip(target.id)
        return future

    # -- the rest

    def close(self, client_id: int, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake with a client and return at once.

        Thread-safe; never blocks. Raises :class:`ValueError` for a code an
        endpoint may not send or a reason longer than 123 UTF-8 bytes, and
        :class:`TypeError` for a ``client_id`` that is not an ``int``.
        Unknown or closing ids: nothing (the client is, or will be, closed).
        """
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
        check_client_id(client_id)
        c = self._clients.get(client_id)
        if c is None:
            if self._backplane.is_local(client_id):
                return None
            reply = self._backplane.remote_info(client_id)
            return None if reply is None else _info_from_dict(reply)
        q = c.queue
        return ClientInfo(
            bytes_read=c.bytes_read,
            bytes_sent=q.bytes_sent,
            frames_read=c.frames_read,
            frames_sent=q.frames_sent,
            messages_read=c.messages_read,
            messages_sent=q.messages_sent,
            connected_at=c.connected_at,
            closed_at=c.closed_at,
            close_code=c.close_code,
            close_reason=c.close_reason,
            last_read_at=c.last_read_at,
            last_sent_at=q.last_sent_at,
            last_data_read_at=c.last_data_read_at,
            last_data_sent_at=q.last_data_sent_at,
            remote_address=c.remote_address,
            subprotocol=c.subprotocol,
            compression=c.compression,
            send_queue_bytes=q.queued_bytes,
            pings_sent=c.pings_sent,
            pongs_received=c.pongs_received,
            latency=c.latency,
        )

    def get_clients(self, *, local: bool = False) -> list[int]:
        """The ids of the open clients (closing ones excluded).

        With a cluster backplane this includes the clients of every live
        process (as they last reported them), unless ``local`` is true. While
        the backplane is down it returns the local clients only.
        """
        ids = [c.id for c in list(self._clients.values()) if c.state == OPEN]
        if not local and self._backplane.clustered:
            ids.extend(self._backplane.cluster_clients())
        return ids

    # -- rooms

    def join(self, client_id: int, room: str) -> None:
        """Put a client in ``room`` (nothing if it is unknown or already there).

        Rooms exist while they have members; a client leaves all of them
        when it closes. A client of another process is joined by its process.
        """
        check_client_id(client_id)
        _check_room(room)
        connection = self._clients.get(client_id)
        if connection is not None:
            if connection.state == OPEN and self._rooms.join(client_id, room):
                self._backplane.rooms_changed(client_id, room)
                if connection.state != OPEN and self._rooms.leave(client_id, room):
                    # Closed meanwhile: its leave_all may have run before this join.
                    self._backplane.rooms_changed(client_id, room)
        elif not self._backplane.is_local(client_id):
            self._publish_to(client_id, wire.Operation(wire.JOIN, client_ids=(client_id,), room=room))

    def leave(self, client_id: int, room: str) -> None:
        """Take a client out of ``room`` (nothing if it is not in it). Thread-safe; never blocks."""
        check_client_id(client_id)
        _check_room(room)
        if self._is_here(client_id):
            if self._rooms.leave(client_id, room):
                self._backplane.rooms_changed(client_id, room)
        else:
            self._publish_to(client_id, wire.Operation(wire.LEAVE, client_ids=(client_id,), room=room))

    def rooms_of(self, client_id: int) -> set[str]:
        """The rooms a client is in (empty for an unknown id). Thread-safe; a remote client's asks Redis."""
        check_client_id(client_id)
        if self._is_here(client_id):
            return self._rooms.rooms_of(client_id)
        return self._backplane.remote_rooms(client_id)

    def room_clients(self, room: str, *, local: bool = False) -> list[int]:
        """The ids of the clients in ``room``, across the cluster unless ``local``."""
        ids = sorted(self._rooms.members(room))
        if not local and self._backplane.clustered:
            ids.extend(self._backplane.cluster_room(room))
        return ids

    def _is_here(self, client_id: int) -> bool:
        """Whether ``client_id`` is (or was) a client of this process."""
        return client_id in self._clients or self._backplane.is_local(client_id)

    def _publish_to(self, client_id: int, op: wire.Operation) -> None:
        # close, join and leave return nothing, so a failure to reach the other process is logged.
        self._backplane.publish(op, client_id).add_done_callback(_log_unpublished)

    # -- operations from other processes (called by the backplane)

    def _apply(self, op: wire.Operation) -> None:
        """Apply an operation published by another process to the local clients."""
        opcode = OP_BINARY if op.binary else OP_TEXT
        kind = op.kind
        if kind == wire.BROADCAST:
            self._fan_out(opcode, op.payload, self._local_targets(set(op.except_ids), op.room))
        elif kind in (wire.SEND, wire.MULTICAST):
            clients = self._clients
            targets = [c for c in map(clients.get, op.client_ids) if c is not None and c.state == OPEN]
            self._fan_out(opcode, op.payload, targets)
        elif kind == wire.CLOSE:
            for client_id in op.client_ids:
                connection = self._clients.get(client_id)
                if connection is not None:
                    connection.close(op.code, op.reason)
        elif kind == wire.JOIN and op.room is not None:
            for client_id in op.client_ids:
                if client_id in self._clients:
                    self.join(client_id, op.room)
        elif kind == wire.LEAVE and op.room is not None:
            for client_id in op.client_ids:
                if client_id in self._clients:
                    self.leave(client_id, op.room)

    def _backplane_changed(self, up: bool) -> None:
        for listener in list(self._backplane_listeners):
            try:
                listener(up)
            except Exception:
                logger.exception("exception in on_backplane_%s", "up" if up else "down")

    def _info_dict(self, client_id: int) -> dict[str, Any] | None:
        info = self.get_info(client_id) if client_id in self._clients else None
        return None if info is None else info.as_dict()


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


def _info_from_dict(values: dict[str, Any]) -> ClientInfo | None:
    try:
        return ClientInfo(**{f.name: values[f.name] for f in fields(ClientInfo)})
    except (KeyError, TypeError):
        return None


def _as_bytes(data: Data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be str, bytes, bytearray or memoryview, not {type(data).__name__}")
