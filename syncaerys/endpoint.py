"""Endpoint: how the application talks to its clients, from any thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterable
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from .connection import OPEN
from .connection import Connection
from .exceptions import ClientException
from .futures import BroadcastResult
from .futures import BroadcastTracker
from .futures import SendFuture
from .protocol.frames import OP_BINARY
from .protocol.frames import OP_TEXT
from .protocol.frames import validate_close_arguments

__all__ = ["Endpoint", "ClientInfo"]

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
    """

    def __init__(self) -> None:
        # Guards changes to _clients; lookups read the dict without it.
        self._lock = threading.Lock()
        self._clients: dict[int, Connection] = {}

    # -- registry (used by the gateway)

    def _register(self, connection: Connection) -> None:
        with self._lock:
            self._clients[connection.id] = connection

    def _unregister(self, connection: Connection) -> None:
        with self._lock:
            self._clients.pop(connection.id, None)

    def _connections(self) -> list[Connection]:
        return list(self._clients.values())

    # -- sending to one client

    def send(self, data: Data, client_id: int) -> SendFuture[int]:
        """Send a message: ``str`` as text, bytes-like as binary.

        The future resolves to the number of bytes written (all frames) once
        they are on the socket, and fails with :class:`ClientException` if the
        client is closing or goes away first. An unknown id gives a future
        already resolved to 0 (as Aerys does).
        """
        if isinstance(data, str):
            return self._send(OP_TEXT, data.encode("utf-8"), client_id)
        return self._send(OP_BINARY, _as_bytes(data), client_id)

    def send_binary(self, data: Data, client_id: int) -> SendFuture[int]:
        """Send a binary message whatever the type of ``data`` (``str`` as UTF-8)."""
        payload = data.encode("utf-8") if isinstance(data, str) else _as_bytes(data)
        return self._send(OP_BINARY, payload, client_id)

    def _send(self, opcode: int, payload: bytes, client_id: int) -> SendFuture[int]:
        connection = self._clients.get(client_id)
        if connection is None:
            return SendFuture.resolved(0)
        if connection.state != OPEN:
            return SendFuture.failed(ClientException(f"client {client_id} is closing"))
        future: SendFuture[int] = SendFuture()
        if not connection.send_frames(connection.frames_for(opcode, payload), future):
            future._fail(client_id, ClientException(f"client {client_id} is closing"))
        return future

    # -- sending to many

    def broadcast(self, data: Data, except_ids: Iterable[int] = ()) -> SendFuture[BroadcastResult]:
        """Send to every open client not in ``except_ids``.

        The frames are encoded once and the same bytes go to every socket.
        Closing clients are skipped. The future resolves to a
        :class:`~syncaerys.BroadcastResult` and never fails as a whole.
        """
        excluded = set(except_ids)
        targets = [c for c in list(self._clients.values()) if c.state == OPEN and c.id not in excluded]
        return self._fan_out(data, targets, binary=False)

    def broadcast_binary(self, data: Data, except_ids: Iterable[int] = ()) -> SendFuture[BroadcastResult]:
        """:meth:`broadcast` as a binary message whatever the type of ``data``."""
        excluded = set(except_ids)
        targets = [c for c in list(self._clients.values()) if c.state == OPEN and c.id not in excluded]
        return self._fan_out(data, targets, binary=True)

    def multicast(self, data: Data, client_ids: Iterable[int]) -> SendFuture[BroadcastResult]:
        """Send to the listed clients; unknown and closing ids count as failed."""
        return self._fan_out(data, self._lookup(client_ids), binary=False)

    def multicast_binary(self, data: Data, client_ids: Iterable[int]) -> SendFuture[BroadcastResult]:
        """:meth:`multicast` as a binary message whatever the type of ``data``."""
        return self._fan_out(data, self._lookup(client_ids), binary=True)

    def _lookup(self, client_ids: Iterable[int]) -> list[Connection | int]:
        clients = self._clients
        return [clients.get(client_id, client_id) for client_id in dict.fromkeys(client_ids)]

    def _fan_out(
        self, data: Data, targets: list[Connection] | list[Connection | int], *, binary: bool
    ) -> SendFuture[BroadcastResult]:
        if isinstance(data, str) and not binary:
            opcode, payload = OP_TEXT, data.encode("utf-8")
        else:
            opcode = OP_BINARY
            payload = data.encode("utf-8") if isinstance(data, str) else _as_bytes(data)
        future: SendFuture[BroadcastResult] = SendFuture()
        tracker = BroadcastTracker(future, len(targets))
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

        Raises :class:`ValueError` for a code an endpoint may not send or a
        reason longer than 123 UTF-8 bytes. Unknown or closing ids: nothing.
        """
        validate_close_arguments(code, reason)
        connection = self._clients.get(client_id)
        if connection is not None:
            connection.close(code, reason)

    def get_info(self, client_id: int) -> ClientInfo | None:
        """A snapshot of a client's statistics; ``None`` for an unknown id."""
        c = self._clients.get(client_id)
        if c is None:
            return None
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

    def get_clients(self) -> list[int]:
        """The ids of the open clients (closing ones excluded)."""
        return [c.id for c in list(self._clients.values()) if c.state == OPEN]


def _as_bytes(data: Data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be str, bytes, bytearray or memoryview, not {type(data).__name__}")
