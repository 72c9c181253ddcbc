"""Publisher: reach a cluster's clients from a process that is not a server."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from ..client.ids import check_client_id
from ..exceptions import UnknownClient
from ..protocol.frames import validate_close_arguments
from ..types import Data
from . import wire
from .cluster import ClusterView
from .cluster import Keys
from .errors import redis_errors
from .redis_backplane import connect

__all__ = ["Publisher"]


class Publisher:
    """A write-only member of a :class:`~syncaerys.RedisBackplane` cluster.

    For a cron job, a Celery task or a view in another service: it sends,
    broadcasts and closes through the cluster's Redis, and reads the cluster's
    membership, without serving clients itself::

        with Publisher("redis://127.0.0.1:6379/0", channel="chat") as publisher:
            publisher.broadcast("maintenance in 5 minutes")

    Every method publishes at once, on the calling thread, and raises
    :class:`~syncaerys.BackplaneError` if Redis cannot be reached. Sends
    return the number of server processes that received the operation
    (delivery is at most once; 0 means nobody was listening).

    Thread-safe (redis-py's client and its connection pool are). Every method
    but :meth:`close_connection` blocks for its Redis round trips, each of at
    most ``timeout`` seconds.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        channel: str = "syncaerys",
        timeout: float = 1.0,
        redis_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.keys = Keys(channel)
        self.url = url
        self._redis = connect(url, timeout, redis_options)
        self._view = ClusterView(self._redis, self.keys)

    def send(self, data: Data, client_id: int) -> int:
        """Send a message (``str`` as text, bytes-like as binary) to one client of the cluster.

        Blocks for one Redis round trip. Returns the number of processes that
        received it (1); raises :class:`~syncaerys.UnknownClient` (a
        :class:`~syncaerys.ClientException`) when the client is not open on a
        live node, and :class:`TypeError` for an id that is not an ``int``.
        """
        return self._to_client(_operation(wire.SEND, data, False, client_ids=(client_id,)), client_id)

    def send_binary(self, data: Data, client_id: int) -> int:
        """:meth:`send` as a binary message whatever the type of ``data``."""
        return self._to_client(_operation(wire.SEND, data, True, client_ids=(client_id,)), client_id)

    def broadcast(self, data: Data, except_ids: Iterable[int] = (), *, room: str | None = None) -> int:
        """Send to every client of the cluster (of ``room`` if given) not in ``except_ids``.

        Blocks for one Redis round trip.
        """
        op = _operation(wire.BROADCAST, data, False, except_ids=tuple(except_ids), room=room)
        return self._publish(self.keys.all, op)

    def broadcast_binary(self, data: Data, except_ids: Iterable[int] = (), *, room: str | None = None) -> int:
        """:meth:`broadcast` as a binary message whatever the type of ``data``."""
        op = _operation(wire.BROADCAST, data, True, except_ids=tuple(except_ids), room=room)
        return self._publish(self.keys.all, op)

    def multicast(self, data: Data, client_ids: Iterable[int]) -> int:
        """Send to the listed clients, wherever they are connected.

        Blocks for one Redis round trip per node the ids belong to.
        """
        return self._multicast(data, client_ids, binary=False)

    def multicast_binary(self, data: Data, client_ids: Iterable[int]) -> int:
        """:meth:`multicast` as a binary message whatever the type of ``data``."""
        return self._multicast(data, client_ids, binary=True)

    def close(self, client_id: int, code: int = 1000, reason: str = "") -> int:
        """Close a client of the cluster (``ValueError`` for a bad code or reason).

        Returns 1 when the close reached the process that has the client open,
        and 0 when no live process has it (closed already, or never seen), as
        :meth:`Endpoint.close <syncaerys.Endpoint.close>` does nothing then.
        Blocks for one Redis round trip.
        """
        validate_close_arguments(code, reason)
        op = wire.Operation(wire.CLOSE, client_ids=(client_id,), code=code, reason=reason)
        return self._to_client(op, client_id)

    def get_clients(self) -> list[int]:
        """The ids of every client of every live server process. Blocks for a few Redis round trips."""
        return self._read(self._view.clients)

    def room_clients(self, room: str) -> list[int]:
        """The ids of the clients in ``room`` across the cluster. Blocks for a few Redis round trips."""
        return self._read(lambda: self._view.room(room))

    def close_connection(self) -> None:
        """Release the connection to Redis. Never blocks."""
        self._redis.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close_connection()

    # -- internals

    def _multicast(self, data: Data, client_ids: Iterable[int], *, binary: bool) -> int:
        by_node: dict[int, list[int]] = {}
        for client_id in dict.fromkeys(client_ids):
            check_client_id(client_id, "client_ids")
            by_node.setdefault(wire.node_of(client_id), []).append(client_id)
        reached = 0
        for node, ids in by_node.items():
            reached += self._publish(
                self.keys.to(node), _operation(wire.MULTICAST, data, binary, client_ids=tuple(ids))
            )
        return reached

    def _to_client(self, op: wire.Operation, client_id: int) -> int:
        """Publish ``op`` to the node of ``client_id`` if that node has the client open.

        A send to a client no live node has raises :class:`~syncaerys.UnknownClient`; a close returns 0.
        """
        check_client_id(client_id)
        channel = self.keys.to(wire.node_of(client_id))
        with redis_errors(f"could not publish to Redis at {self.url}"):
            pipe = self._redis.pipeline(transaction=False)
            pipe.hexists(self.keys.clients(wire.node_of(client_id)), str(client_id))
            pipe.publish(channel, wire.encode(op))
            known, receivers = pipe.execute()
        if not known or not receivers:
            if op.kind != wire.SEND:
                return 0
            raise UnknownClient(f"client {client_id} is not open on any live node")
        return int(receivers)

    def _publish(self, channel: str, op: wire.Operation) -> int:
        with redis_errors(f"could not publish to Redis at {self.url}"):
            return int(self._redis.publish(channel, wire.encode(op)))

    def _read(self, query: Any) -> list[int]:
        with redis_errors(f"could not read the cluster from Redis at {self.url}"):
            result: list[int] = query()
        return result


def _operation(kind: str, data: Data, binary: bool, **fields: Any) -> wire.Operation:
    if isinstance(data, str):
        return wire.Operation(kind, binary=binary, payload=data.encode("utf-8"), **fields)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be str, bytes, bytearray or memoryview, not {type(data).__name__}")
    return wire.Operation(kind, binary=True, payload=bytes(data), **fields)
