"""The backplane interface behind the Endpoint, and the in-process default."""

from __future__ import annotations

import itertools
import threading
from typing import Any
from typing import Protocol

from ..futures import SendFuture
from .wire import Operation

__all__ = ["Backplane", "LocalBackplane", "LocalNode"]


class LocalNode(Protocol):
    """What a backplane may ask of the process it serves (the gateway builds it).

    Every method is thread-safe and never blocks, except that
    ``availability_changed`` runs the handler's ``on_backplane_up``/``on_backplane_down``.
    """

    def apply(self, op: Operation) -> None:
        """Apply another process's operation (send, broadcast, close, join, ...) to the local clients."""
        ...

    def describe(self, client_id: int) -> dict[str, Any] | None:
        """A local client's statistics (``ClientInfo.as_dict()``); ``None`` if it is not here."""
        ...

    def client_ids(self) -> set[int]:
        """The ids of the local clients, open or closing."""
        ...

    def rooms(self) -> dict[str, set[int]]:
        """Every local room and its members."""
        ...

    def rooms_of(self, client_id: int) -> set[str]:
        """The rooms of a local client."""
        ...

    def members(self, room: str) -> set[int]:
        """The local members of ``room``."""
        ...

    def availability_changed(self, up: bool) -> None:
        """Report that remote operations became possible (``True``) or impossible."""
        ...


# Client ids are unique for the life of the process, across gateways.
_process_ids = itertools.count(1)
_process_ids_lock = threading.Lock()


def next_process_client_id() -> int:
    """A client id no other gateway of this process has issued. Thread-safe; never blocks."""
    with _process_ids_lock:
        return next(_process_ids)


class Backplane:
    """What an :class:`~syncaerys.Endpoint` needs to reach clients outside its process.

    The default, :class:`LocalBackplane`, has no outside: every operation is
    local. :class:`~syncaerys.RedisBackplane` publishes operations once to
    Redis, and every other process applies them to its own clients.
    One backplane serves one gateway.

    Every method is thread-safe except :meth:`attach`, :meth:`start` and
    :meth:`stop`, which the gateway calls from one thread at a time. The ids,
    membership and :meth:`publish` methods run on handshake, client and
    application threads and must never block; :meth:`start`, :meth:`stop`,
    :meth:`wait_announced` and the cluster queries may (a Redis backplane
    waits for Redis there). This default never blocks.
    """

    #: Whether clients may live in other processes.
    clustered = False

    def __init__(self) -> None:
        self._node: LocalNode | None = None
        self._errors_lock = threading.Lock()
        self._publish_errors = 0
        self._malformed = 0
        self._redis_errors = 0

    @property
    def publish_errors(self) -> int:
        """Operations that could not be published to the other processes, since the start. Never blocks."""
        return self._publish_errors

    @property
    def malformed_messages(self) -> int:
        """Messages received on the backplane's channels and dropped as malformed, since the start. Never blocks."""
        return self._malformed

    @property
    def redis_errors(self) -> int:
        """Commands the backplane's server refused with an error reply (not a lost connection). Never blocks."""
        return self._redis_errors

    def _count_redis_errors(self, count: int) -> None:
        with self._errors_lock:
            self._redis_errors += count

    def _count_malformed(self) -> None:
        with self._errors_lock:
            self._malformed += 1

    def _count_publish_errors(self, count: int = 1) -> None:
        with self._errors_lock:
            self._publish_errors += count

    @property
    def local_node(self) -> LocalNode | None:
        """The local node it serves (``None`` before :meth:`attach`). Thread-safe; never blocks."""
        return self._node

    def attach(self, node: LocalNode) -> None:
        """Bind to the process it serves (once, when the gateway is built). Not thread-safe; never blocks."""
        if self._node is not None and self._node is not node:
            raise ValueError("a backplane serves one gateway; give each gateway its own (and its own channel)")
        self._node = node

    def start(self) -> None:
        """Connect; called when the gateway starts, before ``on_start``. May block; the default does nothing."""

    def stop(self) -> None:
        """Disconnect; called when the gateway has stopped. May block; the default does nothing."""

    @property
    def up(self) -> bool:
        """Whether remote operations can be carried right now. Thread-safe; never blocks."""
        return True

    # -- ids and membership (called on handshake and client paths: must not block)

    def next_client_id(self) -> int:
        """A new client id, unique across everything this backplane connects. Thread-safe; must not block."""
        return next_process_client_id()

    def is_local(self, client_id: int) -> bool:
        """Whether ``client_id`` was issued by this process. Thread-safe; must not block."""
        return True

    def client_opened(self, client_id: int) -> None:
        """A local client is registered. Thread-safe; must not block."""

    def client_closed(self, client_id: int) -> None:
        """A local client is gone (and out of every room). Thread-safe; must not block."""

    def wait_announced(self, client_id: int) -> None:
        """Block (briefly) until the other nodes can see ``client_id``; called before ``on_open``.

        Thread-safe; runs on the client's thread. The default returns at once.
        """

    def rooms_changed(self, client_id: int, room: str) -> None:
        """A local client joined or left ``room``. Thread-safe; must not block."""

    # -- remote operations

    def publish(self, op: Operation, client_id: int | None = None) -> SendFuture[int]:
        """Carry ``op`` to the node of ``client_id``, or to every other node.

        The future resolves to the number of other nodes that received it.
        Thread-safe; must not block (the future tells the outcome later).
        """
        return SendFuture.resolved(0)

    def cluster_clients(self) -> list[int]:
        """The ids of the clients of the other nodes. Thread-safe; may block (the default: ``[]``)."""
        return []

    def cluster_room(self, room: str) -> list[int]:
        """The ids of the clients of the other nodes in ``room``. Thread-safe; may block (the default: ``[]``)."""
        return []

    def remote_rooms(self, client_id: int) -> set[str]:
        """The rooms of a client of another node. Thread-safe; may block (the default: an empty set)."""
        return set()

    def remote_info(self, client_id: int) -> dict[str, Any] | None:
        """What the node of ``client_id`` reports about it, or ``None``. Thread-safe; may block (default: ``None``)."""
        return None


class LocalBackplane(Backplane):
    """The default: one process, nothing to install or start. No method blocks (threading as on :class:`Backplane`)."""
