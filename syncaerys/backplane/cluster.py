"""Where a Redis-backed cluster keeps its state, and the queries that read it.

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
from typing import Any

from .wire import node_of

__all__ = ["Keys", "ClusterView"]


class Keys:
    """The Redis key and channel names of one cluster."""

    def __init__(self, channel: str) -> None:
        if not channel or any(c.isspace() for c in channel):
            raise ValueError(f"invalid backplane channel name {channel!r}")
        self.channel = channel
        self.all = f"{channel}:all"
        self.nodes = f"{channel}:nodes"
        self.node_seq = f"{channel}:node-seq"

    def node(self, n: int) -> str:
        return f"{self.channel}:node:{n}"

    def clients(self, n: int) -> str:
        return f"{self.channel}:clients:{n}"

    def rooms(self, n: int) -> str:
        return f"{self.channel}:rooms:{n}"

    def to(self, n: int) -> str:
        return f"{self.channel}:to:{n}"


class ClusterView:
    """Reads the cluster's membership (raises redis errors to the caller)."""

    def __init__(self, client: Any, keys: Keys, own_node: int = 0) -> None:
        self._redis = client
        self._keys = keys
        self._own = own_node

    def live_nodes(self) -> list[int]:
        """The other nodes whose liveness key exists; dead ones are pruned."""
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
        """The client ids of the other live nodes."""
        nodes = self.live_nodes()
        if not nodes:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for n in nodes:
            pipe.hkeys(self._keys.clients(n))
        return sorted(int(i) for ids in pipe.execute() for i in ids)

    def room(self, room: str) -> list[int]:
        """The client ids of the other live nodes in ``room``."""
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
        """The rooms of a client as its node last reported them."""
        value = self._redis.hget(self._keys.clients(node_of(client_id)), str(client_id))
        return set(json.loads(value)) if value else set()
