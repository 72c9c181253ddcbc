"""The Redis membership schema of a cluster: its keys, its writer and its reader.

This module is the one place that knows how the cluster's state is laid out in
Redis: :class:`Keys` names it, :class:`NodeRecord` writes one node's part (the
backplane's writer thread drives it), :class:`ClusterView` reads everyone's
(the backplane's queries and the :class:`~syncaerys.Publisher`).

Each node owns its state and nobody else writes it:

* ``{channel}:node:{n}``: the node is alive (a token, with a TTL the node
  refreshes); a node that dies stops refreshing it and its clients vanish
  with it;
* ``{channel}:clients:{n}``: a hash, client id -> JSON list of its rooms;
* ``{channel}:rooms:{n}``: a hash, room -> JSON list of its client ids;
* ``{channel}:nodes``: the set of node numbers ever live (pruned by readers);
* ``{channel}:node-seq``: the counter node numbers are drawn from (from a random start).

Operations travel on the pub/sub channels ``{channel}:all`` (every node) and
``{channel}:to:{n}`` (node ``n`` only).
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any
from typing import Protocol

from .wire import MAX_NODES
from .wire import node_of

__all__ = ["Keys", "ClusterView", "NodeRecord", "NodeNumbersExhausted"]

logger = logging.getLogger("syncaerys.backplane")


class NodeNumbersExhausted(Exception):
    """No node number was free after many tries (the cluster is full, or the counter is broken)."""


class _Membership(Protocol):
    """What :meth:`NodeRecord.write` reads of the local node (a :class:`~syncaerys.backplane.base.LocalNode`)."""

    def client_ids(self) -> set[int]: ...

    def rooms(self) -> dict[str, set[int]]: ...

    def rooms_of(self, client_id: int) -> set[str]: ...

    def members(self, room: str) -> set[int]: ...


class Keys:
    """The Redis key and channel names of one cluster. Not changed after it is built: thread-safe; never blocks."""

    def __init__(self, channel: str) -> None:
        if not channel or any(c.isspace() for c in channel):
            raise ValueError(f"invalid backplane channel name {channel!r}")
        self.channel = channel
        self.all = f"{channel}:all"
        self.nodes = f"{channel}:nodes"
        self.node_seq = f"{channel}:node-seq"

    def node(self, n: int) -> str:
        """The liveness key of node ``n``."""
        return f"{self.channel}:node:{n}"

    def clients(self, n: int) -> str:
        """The hash of node ``n``'s clients (client id -> its rooms)."""
        return f"{self.channel}:clients:{n}"

    def rooms(self, n: int) -> str:
        """The hash of node ``n``'s rooms (room -> its client ids)."""
        return f"{self.channel}:rooms:{n}"

    def to(self, n: int) -> str:
        """The pub/sub channel of node ``n`` alone."""
        return f"{self.channel}:to:{n}"


class ClusterView:
    """Reads the cluster's membership (raises redis errors to the caller).

    Thread-safe: it keeps no state of its own, and redis-py's client is
    thread-safe. Every method blocks for Redis round trips, each at most the
    client's socket timeout.
    """

    def __init__(self, client: Any, keys: Keys, own_node: int = 0) -> None:
        self._redis = client
        self._keys = keys
        self._own = own_node

    def live_nodes(self) -> list[int]:
        """The other nodes whose liveness key exists; dead ones are pruned. Blocks for two or three round trips."""
        keys = self._keys
        nodes = sorted(int(n) for n in self._redis.smembers(keys.nodes) if int(n) != self._own)
        if not nodes:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for n in nodes:
            pipe.exists(keys.node(n))
        alive = pipe.execute()
        dead = [n for n, exists in zip(nodes, alive, strict=True) if not exists]
        if dead:
            self._redis.srem(keys.nodes, *dead)
        return [n for n, exists in zip(nodes, alive, strict=True) if exists]

    def clients(self) -> list[int]:
        """The client ids of the other live nodes. Blocks for :meth:`live_nodes` and one more round trip."""
        nodes = self.live_nodes()
        if not nodes:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for n in nodes:
            pipe.hkeys(self._keys.clients(n))
        return sorted(int(i) for ids in pipe.execute() for i in ids)

    def room(self, room: str) -> list[int]:
        """The client ids of the other live nodes in ``room``. Blocks for :meth:`live_nodes` and one more round trip."""
        nodes = self.live_nodes()
        if not nodes:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for n in nodes:
            pipe.hget(self._keys.rooms(n), room)
        members: list[int] = []
        for value in pipe.execute():
            if value:
                members.extend(int(i) for i in json.loads(value))
        return sorted(members)

    def rooms_of(self, client_id: int) -> set[str]:
        """The rooms of a client as its node last reported them. Blocks for one round trip."""
        value = self._redis.hget(self._keys.clients(node_of(client_id)), str(client_id))
        return set(json.loads(value)) if value else set()


class NodeRecord:
    """One node's entries in Redis: it claims a node number, writes its clients and rooms, keeps them alive.

    Not thread-safe: the backplane's start claims, its writer thread writes,
    refreshes and heartbeats, and its stop removes once both threads have
    ended; :meth:`heartbeat`, which keeps no state, is also called by the
    listener thread after it reconnects (the writer does not write while the
    backplane is down). Every method may raise redis-py's errors to the
    caller. :meth:`claim`, :meth:`heartbeat` and :meth:`remove` block for
    Redis commands; :meth:`write` and :meth:`refresh` only queue commands on
    a pipeline and never block.
    """

    def __init__(self, client: Any, keys: Keys, token: str, ttl: float) -> None:
        self._redis = client
        self._keys = keys
        self._token = token
        self._ttl_ms = int(ttl * 1000)
        #: The node number (0 until claimed or assigned).
        self.node = 0
        # Each client's rooms as last written, to rewrite the rooms of a client that is gone.
        self._written_rooms: dict[int, set[str]] = {}

    def claim(self) -> int:
        """Take a free node number and mark it alive; raises :class:`NodeNumbersExhausted` if none is found."""
        keys = self._keys
        # From a random start, not from 1: after Redis lost its data, live nodes that
        # have not claimed their number again yet must not see it handed out again.
        self._redis.set(keys.node_seq, random.randrange(MAX_NODES // 2), nx=True)
        for _ in range(64):
            n = int(self._redis.incr(keys.node_seq)) % MAX_NODES
            if n and self._redis.set(keys.node(n), self._token, nx=True, ex=self._ttl_ms // 1000 or 1):
                self._redis.sadd(keys.nodes, n)
                self.node = n
                return n
        raise NodeNumbersExhausted("no free node number")

    def write(self, pipe: Any, local: _Membership, full: bool, clients: set[int], rooms: set[str]) -> None:
        """Queue on ``pipe`` what brings this node's state in Redis up to date.

        ``full`` rewrites everything; otherwise only the ``clients`` and
        ``rooms`` that changed.
        """
        keys, n = self._keys, self.node
        live = local.client_ids()
        if full:
            pipe.delete(keys.clients(n), keys.rooms(n))
            clients = set(live)
            rooms = set(local.rooms())
            self._written_rooms = {}
        if clients:
            present: dict[str, str] = {}
            gone: list[str] = []
            for i in clients:
                if i in live:
                    member_of = local.rooms_of(i)
                    present[str(i)] = json.dumps(sorted(member_of))
                    self._written_rooms[i] = member_of
                else:
                    gone.append(str(i))
                    # A closing client leaves its rooms without rooms_changed(): rewrite them.
                    rooms = rooms | self._written_rooms.pop(i, set())
            if present:
                pipe.hset(keys.clients(n), mapping=present)
            if gone:
                pipe.hdel(keys.clients(n), *gone)
        if rooms:
            members = {room: sorted(local.members(room)) for room in rooms}
            present_rooms = {room: json.dumps(ids) for room, ids in members.items() if ids}
            empty = [room for room, ids in members.items() if not ids]
            if present_rooms:
                pipe.hset(keys.rooms(n), mapping=present_rooms)
            if empty:
                pipe.hdel(keys.rooms(n), *empty)
        self.refresh(pipe)

    def refresh(self, pipe: Any) -> None:
        """Queue on ``pipe`` the renewal of the TTLs of this node's clients and rooms."""
        keys, n, ttl = self._keys, self.node, self._ttl_ms
        pipe.pexpire(keys.clients(n), ttl)
        pipe.pexpire(keys.rooms(n), ttl)
        pipe.sadd(keys.nodes, n)

    def heartbeat(self) -> bool:
        """Refresh the liveness key; whether everything must be rewritten (it was lost)."""
        key, ttl = self._keys.node(self.node), self._ttl_ms
        owner = self._redis.get(key)
        if owner is None:
            # Expired (this process stalled) or Redis restarted empty: claim again.
            if not self._redis.set(key, self._token, nx=True, px=ttl):
                # The backplane's listener and writer may both come here after a restart:
                # the other one claiming it back first is no clash.
                taken_by = self._redis.get(key)
                if taken_by is None or taken_by.decode() != self._token:
                    logger.error("backplane: node number %d was taken by another process meanwhile", self.node)
            return True
        if owner.decode() != self._token:
            logger.error("backplane: node number %d belongs to another process; client ids may clash", self.node)
            return False
        self._redis.pexpire(key, ttl)
        return False

    def remove(self) -> None:
        """Delete this node's entries (a clean stop)."""
        keys, n = self._keys, self.node
        self._redis.delete(keys.node(n), keys.clients(n), keys.rooms(n))
        self._redis.srem(keys.nodes, n)
