"""RedisBackplane: endpoint operations, membership and rooms across processes.

Two threads per backplane:

* the **listener** owns the pub/sub connection: it applies what other nodes
  publish, notices when Redis goes away, reconnects with a backoff that
  resets after each success, resubscribes, and decides whether the backplane
  is up;
* the **writer** publishes queued operations in pipelined batches, mirrors
  this node's clients and rooms into Redis (only what changed, or everything
  after a reconnect) and refreshes the node's liveness key.

Nothing on a client's thread waits for Redis, except the cluster queries
(``get_clients``, ``room_clients``, remote ``rooms_of`` and ``get_info``),
which take a few round trips (``get_info`` also waits for the other node's
answer), and ``wait_announced`` before ``on_open``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

from ..exceptions import BackplaneError
from ..exceptions import UnknownClient
from ..futures import SendFuture
from . import wire
from .base import Backplane
from .cluster import ClusterView
from .cluster import Keys
from .cluster import NodeNumbersExhausted
from .cluster import NodeRecord
from .errors import REDIS_ERRORS
from .errors import redis_errors

# redis-py is optional: without it this module still imports (so that
# ``from syncaerys import *`` works), and building a backplane raises ImportError.
_redis_missing: ImportError | None = None
try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as error:  # pragma: no cover - depends on the install
    _redis_missing = error


def require_redis() -> None:
    """Raise :class:`ImportError` naming the extra to install when redis-py is missing. Thread-safe; never blocks."""
    if _redis_missing is not None:
        raise ImportError("RedisBackplane and Publisher need redis-py: pip install 'syncaerys[redis]'") from (
            _redis_missing
        )


__all__ = ["RedisBackplane", "connect", "require_redis"]

logger = logging.getLogger("syncaerys.backplane")
T = TypeVar("T")

_BATCH = 512
#: Seconds between two log lines about malformed messages or refused commands (each counts those it stands for).
LOG_INTERVAL = 10.0
#: How long a subscription must have lasted for the reconnection backoff to start over.
STABLE_AFTER = 5.0


def connect(url: str, timeout: float, options: Mapping[str, Any] | None = None) -> Any:
    """A redis-py client that fails fast instead of retrying behind our back.

    Never blocks: redis-py connects at the first command. The client is thread-safe (its connection pool is).
    """
    require_redis()
    kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 0),
    }
    kwargs.update(options or {})
    return redis.Redis.from_url(url, **kwargs)


@dataclasses.dataclass
class _Outgoing:
    data: bytes
    channel: str
    future: SendFuture[int]
    # A message to every node also reaches this node's own subscription.
    discount_self: bool
    # A send to one client: fail unless that client is open on its (live) node.
    client_id: int | None = None


@dataclasses.dataclass
class _Work:
    """What the writer thread took in one turn: operations to publish and the state changes to mirror."""

    batch: list[_Outgoing]
    # Rewrite this node's whole state (after a reconnect; a heartbeat that finds it lost sets it too).
    full: bool
    clients: set[int]
    rooms: set[str]
    # The changes marked when this was taken: written once the pipeline went through.
    marked: int


class RedisBackplane(Backplane):
    """A cluster backplane on Redis pub/sub (``pip install syncaerys[redis]``).

    Give each gateway of the cluster the same ``url`` and ``channel`` (and
    different gateways different channels)::

        syncaerys.websocket(Chat(), backplane=RedisBackplane("redis://127.0.0.1:6379/0", channel="chat"))

    :param url: a redis-py URL (``redis://``, ``rediss://``, ``unix://``).
    :param channel: the prefix of this cluster's keys and pub/sub channels.
    :param node_ttl: seconds after which a node that stopped refreshing its
        liveness key (a crash, a kill) is dropped with its clients; refreshed
        every third of it.
    :param request_timeout: how long ``get_info`` of a remote client waits for
        its node's answer, and the timeout of every Redis command.
    :param max_backlog: operations waiting to be published past which new
        ones fail at once with :class:`~syncaerys.BackplaneError`.
    :param max_reconnect_delay: the cap of the reconnection backoff (it starts
        at 50 ms, doubles, and starts over after a success).
    :param redis_options: extra keyword arguments for ``redis.Redis.from_url``.

    Every method is thread-safe except :meth:`start` and :meth:`stop`, which
    the gateway calls from one thread at a time. :meth:`start`, :meth:`stop`,
    :meth:`wait_announced`, :meth:`remote_info` and the cluster queries block
    on Redis (each command at most ``request_timeout``); the other methods
    never block: what they write to Redis is left to the writer thread.
    """

    clustered = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        channel: str = "syncaerys",
        node_ttl: float = 10.0,
        request_timeout: float = 1.0,
        max_backlog: int = 10_000,
        max_reconnect_delay: float = 5.0,
        redis_options: Mapping[str, Any] | None = None,
    ) -> None:
        require_redis()
        super().__init__()
        if not node_ttl >= 1.0:
            raise ValueError("node_ttl must be at least 1 second")
        if not request_timeout > 0:
            raise ValueError("request_timeout must be greater than 0")
        self.url = url
        self.keys = Keys(channel)
        self.node_ttl = float(node_ttl)
        self.request_timeout = float(request_timeout)
        self.max_backlog = max_backlog
        self.max_reconnect_delay = max_reconnect_delay
        self._redis_options = dict(redis_options or {})
        #: This node's number (0 until started); client ids are ``node << 32 | n``.
        self.node = 0
        self._token = secrets.token_hex(8)
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self._redis: Any = None
        # This node's entries in Redis (from start()).
        self._record: NodeRecord
        self._view: ClusterView | None = None

        # Three locks, each for its own state, never nested:
        # * _cond: what the writer takes (the outgoing queue, the dirty sets, _resync),
        #   the _marked/_written counters that wait_announced waits on, and the
        #   transitions of _up and _stopping;
        # * _seq_lock: the client id sequence (next_client_id, on handshake threads);
        # * _requests_lock: the remote_info calls waiting for their answer.
        # _up and _stopping are read without a lock where a stale value is harmless: a
        # publish that slips through just as Redis goes down fails in the writer, which
        # looks again under _cond; one refused just as it comes back is refused as it
        # would have been a moment earlier.
        self._cond = threading.Condition()
        self._outgoing: collections.deque[_Outgoing] = collections.deque()
        self._dirty_clients: set[int] = set()
        # Changes marked so far, and how many of them the writer has written to Redis.
        self._marked = 0
        self._written = 0
        self._dirty_rooms: set[str] = set()
        self._resync = False
        self._stopping = False
        self._up = False
        self._ever_up = False
        self._reconnect = threading.Event()
        # The remote_info calls waiting for their answer, by request id.
        self._requests: dict[str, SendFuture[dict[str, Any] | None]] = {}
        self._requests_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # The listener's alone: when it last logged a malformed message, and how many it dropped unlogged since.
        self._malformed_logged_at = -LOG_INTERVAL
        self._malformed_unlogged = 0
        # Error replies (Redis answered, but refused): counted, logged once per LOG_INTERVAL, and the
        # state writes retried with a backoff. Under _cond.
        self._refused_logged_at = -LOG_INTERVAL
        self._refused_unlogged = 0
        self._refusing = False
        self._state_delay = 0.0
        self._state_retry_at = 0.0

    # -- lifecycle

    def start(self) -> None:
        """Take a node number, subscribe, start the two threads.

        If Redis is unreachable the gateway still starts: local operations
        work, remote ones fail, and the listener keeps trying to connect.
        Blocks: claiming a node number takes a few Redis commands (each at most
        ``request_timeout``), then it waits up to ``2 * request_timeout`` for
        the subscription. Not thread-safe (the gateway's lifecycle lock
        serializes it).
        """
        if self._threads:
            return
        self._stopping = False
        self._redis = connect(self.url, self.request_timeout, self._redis_options)
        self._record = NodeRecord(self._redis, self.keys, self._token, self.node_ttl)
        try:
            with redis_errors("cannot claim a node number"):
                self.node = self._record.claim()
        except (BackplaneError, NodeNumbersExhausted) as error:
            self.node = random.randrange(wire.MAX_NODES // 2, wire.MAX_NODES)
            logger.warning(
                "backplane: Redis at %s is unreachable (%s); starting as node %d, remote operations fail until it is",
                self.url,
                error.__cause__ or error,
                self.node,
            )
        self._record.node = self.node
        self._view = ClusterView(self._redis, self.keys, self.node)
        subscribed = threading.Event()
        self._threads = [
            threading.Thread(target=self._listen, args=(subscribed,), name="syncaerys-backplane-listener", daemon=True),
            threading.Thread(target=self._write, name="syncaerys-backplane-writer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        # So that operations published right after start reach this node.
        subscribed.wait(self.request_timeout * 2)

    def stop(self) -> None:
        """Remove this node from the cluster, stop the threads, close the connections.

        Blocks: it joins the two threads (up to ``3 * request_timeout + 1``
        seconds each), then, if Redis is up, removes the node's keys (two Redis
        commands). Operations still queued fail. Not thread-safe (the gateway's
        lifecycle lock serializes it).
        """
        if not self._threads:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._reconnect.set()
        for thread in self._threads:
            thread.join(self.request_timeout * 3 + 1)
        self._threads = []
        if self._up:
            try:
                with redis_errors(f"could not remove node {self.node} from Redis"):
                    self._record.remove()
            except BackplaneError as error:
                logger.info("backplane: %s", error)
        self._set_up(False, quiet=True)
        self._fail_outgoing(BackplaneError("the backplane is stopped"))
        self._redis.close()

    @property
    def up(self) -> bool:
        """:attr:`Backplane.up`: whether Redis answers and this node is subscribed. Thread-safe; never blocks."""
        return self._up

    # -- ids and membership

    def next_client_id(self) -> int:
        """:meth:`Backplane.next_client_id`: ``node << 32 | n``. Thread-safe; never blocks."""
        with self._seq_lock:
            return self.node << wire.NODE_SHIFT | next(self._seq)

    def is_local(self, client_id: int) -> bool:
        """:meth:`Backplane.is_local`: whether the id carries this node's number. Thread-safe; never blocks."""
        return wire.node_of(client_id) == self.node

    def client_opened(self, client_id: int) -> None:
        """:meth:`Backplane.client_opened`: mark it for the writer thread to write. Thread-safe; never blocks."""
        self._mark(client_id)

    def client_closed(self, client_id: int) -> None:
        """:meth:`Backplane.client_closed`: mark it for the writer thread to delete. Thread-safe; never blocks."""
        self._mark(client_id)

    def rooms_changed(self, client_id: int, room: str) -> None:
        """:meth:`Backplane.rooms_changed`: mark both for the writer thread to write. Thread-safe; never blocks."""
        with self._cond:
            self._dirty_clients.add(client_id)
            self._dirty_rooms.add(room)
            self._cond.notify()

    def _mark(self, client_id: int) -> None:
        with self._cond:
            self._dirty_clients.add(client_id)
            self._marked += 1
            self._cond.notify()

    def wait_announced(self, client_id: int) -> None:
        """Block until this node's clients, ``client_id`` included, are written to Redis.

        So that a client is known to the cluster (sends to it from other nodes
        succeed) before ``on_open`` runs. At most ``request_timeout``; not at
        all while the backplane is down. Thread-safe.
        """
        deadline = time.monotonic() + self.request_timeout
        with self._cond:
            target = self._marked
            while self._written < target and self._up and not self._stopping and not self._refusing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.warning("backplane: client %d not written to Redis within request_timeout", client_id)
                    return
                self._cond.wait(remaining)

    # -- remote operations

    def publish(self, op: wire.Operation, client_id: int | None = None) -> SendFuture[int]:
        """:meth:`Backplane.publish`: queue ``op`` for the writer thread, to the client's node or to every node.

        Thread-safe; never blocks. The future fails at once while the backplane
        is down or ``max_backlog`` operations wait; a send to one client fails
        unless it is open on a live node.
        """
        if not self._up:
            self._count_publish_errors()
            return SendFuture.failed(BackplaneError(f"the backplane is down (Redis at {self.url} unreachable)"))
        if client_id is None:
            return self._enqueue(op, self.keys.all, discount_self=True)
        checked = client_id if op.kind == wire.SEND else None
        return self._enqueue(op, self.keys.to(wire.node_of(client_id)), discount_self=False, client_id=checked)

    def _enqueue(
        self, op: wire.Operation, channel: str, *, discount_self: bool, client_id: int | None = None
    ) -> SendFuture[int]:
        data = wire.encode(dataclasses.replace(op, origin=self.node))
        future: SendFuture[int] = SendFuture()
        with self._cond:
            if len(self._outgoing) >= self.max_backlog:
                self._count_publish_errors()
                return SendFuture.failed(BackplaneError(f"{len(self._outgoing)} operations waiting for Redis"))
            self._outgoing.append(_Outgoing(data, channel, future, discount_self, client_id))
            self._cond.notify()
        return future

    def cluster_clients(self) -> list[int]:
        """:meth:`Backplane.cluster_clients`, read from Redis; ``[]`` while down or on an error.

        Thread-safe; blocks for a few Redis round trips.
        """
        return self._query(lambda view: view.clients(), [])

    def cluster_room(self, room: str) -> list[int]:
        """:meth:`Backplane.cluster_room`, read from Redis; ``[]`` while down or on an error.

        Thread-safe; blocks for a few Redis round trips.
        """
        return self._query(lambda view: view.room(room), [])

    def remote_rooms(self, client_id: int) -> set[str]:
        """:meth:`Backplane.remote_rooms`, read from Redis; empty while down or on an error.

        Thread-safe; blocks for one Redis round trip.
        """
        return self._query(lambda view: view.rooms_of(client_id), set())

    def remote_info(self, client_id: int) -> dict[str, Any] | None:
        """:meth:`Backplane.remote_info`: ask the client's node through Redis; ``None`` while down or unanswered.

        Thread-safe; blocks until the answer comes, at most ``request_timeout``.
        """
        if not self._up:
            return None
        request_id = secrets.token_hex(8)
        answer: SendFuture[dict[str, Any] | None] = SendFuture()
        with self._requests_lock:
            self._requests[request_id] = answer
        try:
            op = wire.Operation(wire.INFO, client_ids=(client_id,), request_id=request_id)
            self.publish(op, client_id)
            try:
                return answer.result(self.request_timeout)
            except TimeoutError:
                return None
        finally:
            with self._requests_lock:
                self._requests.pop(request_id, None)

    def _query(self, read: Callable[[ClusterView], T], fallback: T) -> T:
        view = self._view
        if view is None or not self._up:
            return fallback
        try:
            with redis_errors("cluster query failed"):
                return read(view)
        except (BackplaneError, ValueError) as error:
            # ValueError: what another node wrote does not parse.
            logger.warning(
                "backplane: cluster query failed, answering for this process only: %s", error.__cause__ or error
            )
            return fallback

    # -- the writer thread

    def _write(self) -> None:
        """The writer thread: take the work, mirror the state and publish in one pipeline, resolve the futures."""
        interval = self.node_ttl / 3
        next_beat = time.monotonic()
        while True:
            work = self._take_work(next_beat)
            if work is None:
                return
            if not self._up:
                # Changes made meanwhile are written by the full resync that follows reconnection.
                self._fail(work.batch, BackplaneError(f"the backplane is down (Redis at {self.url} unreachable)"))
                next_beat = time.monotonic() + interval
                continue
            beat = time.monotonic() >= next_beat
            if beat:
                next_beat = time.monotonic() + interval
            refused: list[Exception] = []
            try:
                with redis_errors("could not publish to Redis"):
                    results = self._execute(work, beat, refused)
            except BackplaneError as error:
                self._fail(work.batch, error)
                with self._cond:
                    self._resync = True
                self._connection_lost(error.__cause__ or error)
                continue
            if refused or work.full or work.clients or work.rooms or beat:
                self._state_written(refused, work)
            self._resolve(work.batch, results)

    def _take_work(self, next_beat: float) -> _Work | None:
        """Wait for something to write (or the next heartbeat) and take it; ``None`` once stopped and drained."""
        with self._cond:
            while not (self._stopping or self._outgoing):
                now = time.monotonic()
                wake = next_beat
                if self._up and (self._dirty_clients or self._resync):
                    if now >= self._state_retry_at:
                        break
                    # Redis refused the last state write: wait for the backoff.
                    wake = min(wake, self._state_retry_at)
                if now >= wake:
                    break
                self._cond.wait(wake - now)
            if self._stopping and not self._outgoing:
                return None
            batch = [self._outgoing.popleft() for _ in range(min(_BATCH, len(self._outgoing)))]
            if time.monotonic() < self._state_retry_at:
                # Still backing off: the state waits, the operations go.
                return _Work(batch, False, set(), set(), 0)
            full, self._resync = self._resync, False
            clients, self._dirty_clients = self._dirty_clients, set()
            rooms, self._dirty_rooms = self._dirty_rooms, set()
            return _Work(batch, full, clients, rooms, self._marked)

    def _execute(self, work: _Work, beat: bool, refused: list[Exception]) -> list[Any]:
        """One pipeline: this node's state (or its refresh), then the batch; the batch's replies. Blocks on Redis.

        An error reply (Redis at maxmemory, a read-only replica) is not a lost
        connection: a refused state command goes to ``refused``, a refused
        operation's reply is the error, and what Redis accepted still counts.
        """
        full = work.full
        if beat:
            try:
                full = self._record.heartbeat() or full
            except redis.ResponseError as error:
                refused.append(error)
            work.full = full
        pipe = self._redis.pipeline(transaction=False)
        # The state goes first: a client this node announces is in Redis before the announcement.
        local = self.local_node
        if local is not None and (full or work.clients or work.rooms):
            self._record.write(pipe, local, full, work.clients, work.rooms)
        elif beat:
            # The clients and rooms live as long as the liveness key, changed or not.
            self._record.refresh(pipe)
        state_commands = len(pipe)
        for item in work.batch:
            if item.client_id is not None:
                pipe.hexists(self.keys.clients(wire.node_of(item.client_id)), str(item.client_id))
            pipe.publish(item.channel, item.data)
        results: list[Any] = pipe.execute(raise_on_error=False)
        refused.extend(r for r in results[:state_commands] if isinstance(r, Exception))
        return results[state_commands:]

    def _state_written(self, refused: list[Exception], work: _Work) -> None:
        """After a state write: on success, announce it; on refusal, count it and retry all later, backing off."""
        if refused:
            self._refused(refused)
            with self._cond:
                self._resync = True
                self._state_delay = min(max(self._state_delay * 2, 0.05), self.max_reconnect_delay)
                self._state_retry_at = time.monotonic() + self._state_delay
                # Clients waiting to be announced stop waiting: it may take long.
                self._cond.notify_all()
            return
        with self._cond:
            if self._refusing:
                logger.warning("backplane: Redis at %s accepts writes again", self.url)
            self._refusing = False
            self._state_delay = 0.0
            if work.full or work.clients:
                self._written = max(self._written, work.marked)
                self._cond.notify_all()

    def _refused(self, errors: list[Exception]) -> None:
        """Count error replies; log them at most once per LOG_INTERVAL. Any thread."""
        self._count_redis_errors(len(errors))
        now = time.monotonic()
        with self._cond:
            self._refusing = True
            if now - self._refused_logged_at < LOG_INTERVAL:
                self._refused_unlogged += len(errors)
                return
            also, self._refused_unlogged = self._refused_unlogged, 0
            self._refused_logged_at = now
        logger.warning(
            "backplane: Redis at %s refused %d command(s) (%s)%s; still connected, this node's state in Redis is "
            "retried with a backoff (syncaerys_backplane_redis_errors_total counts them)",
            self.url,
            len(errors) + also,
            errors[0],
            f", {also} of them since the last report" if also else "",
        )

    def _resolve(self, batch: list[_Outgoing], results: list[Any]) -> None:
        """Each operation's future from its replies: the receivers, the client not open on a live node, or refused."""
        replies = iter(results)
        for item in batch:
            known = next(replies) if item.client_id is not None else True
            receivers = next(replies)
            reply_error = known if isinstance(known, Exception) else receivers
            if isinstance(reply_error, Exception):
                self._refused([reply_error])
                self._fail([item], BackplaneError(f"Redis refused to publish: {reply_error}"))
            elif not known or (item.client_id is not None and int(receivers) == 0):
                item.future.set_exception(UnknownClient(f"client {item.client_id} is not open on any live node"))
            else:
                item.future.set_result(max(0, int(receivers) - int(item.discount_self)))

    def _fail(self, batch: list[_Outgoing], error: BackplaneError) -> None:
        if batch:
            self._count_publish_errors(len(batch))
        for item in batch:
            item.future.set_exception(error)

    def _fail_outgoing(self, error: BackplaneError) -> None:
        with self._cond:
            batch = list(self._outgoing)
            self._outgoing.clear()
        self._fail(batch, error)

    # -- the listener thread

    def _listen(self, subscribed: threading.Event) -> None:
        delay = 0.05
        up_since: float | None = None
        while not self._stopping:
            pubsub = None
            try:
                with redis_errors("lost the subscription"):
                    pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.keys.all, self.keys.to(self.node))
                    self._confirm(pubsub)
                    # After a reconnect Redis may have restarted empty: claim the
                    # node number again if needed and rewrite this node's state.
                    try:
                        self._record.heartbeat()
                    except redis.ResponseError as error:
                        # Refused, not gone: the writer claims it again with its backoff.
                        self._refused([error])
                    with self._cond:
                        self._resync = True
                    up_since = time.monotonic()
                    self._reconnect.clear()
                    self._set_up(True)
                    subscribed.set()
                    self._receive(pubsub)
            except BackplaneError as error:
                subscribed.set()
                if not self._stopping:
                    self._connection_lost(error.__cause__ or error)
            except Exception as error:
                # A bug here must not end the thread: the node would look alive and deliver nothing.
                logger.exception("backplane: unexpected error in the listener; resubscribing")
                subscribed.set()
                if not self._stopping:
                    self._connection_lost(error)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(*REDIS_ERRORS):
                        pubsub.close()
            if self._stopping:
                return
            # Set by the failure itself: cleared, so that only stop() ends the backoff early.
            self._reconnect.clear()
            if up_since is not None and time.monotonic() - up_since >= STABLE_AFTER:
                # It was up for a while: this is a new outage, not the same one flapping.
                delay = 0.05
            up_since = None
            if not self._stopping:
                self._reconnect.wait(delay)
            delay = min(delay * 2, self.max_reconnect_delay)

    def _confirm(self, pubsub: Any) -> None:
        """Wait until Redis has processed the subscription (it answers a ping after it)."""
        marker = f"syncaerys-subscribed-{self._token}"
        pubsub.ping(marker)
        deadline = time.monotonic() + self.request_timeout * 2
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=self.request_timeout)
            if message is None:
                continue
            if message.get("type") == "pong":
                if _text(message.get("data")) == marker:
                    return
            elif message.get("type") == "message":
                self._dispatch(message)
        raise redis.TimeoutError("Redis did not confirm the subscription")

    def _receive(self, pubsub: Any) -> None:
        ping_every = self.node_ttl / 3
        last_ping = time.monotonic()
        while not self._stopping and not self._reconnect.is_set():
            message = pubsub.get_message(timeout=0.5)
            now = time.monotonic()
            if now - last_ping >= ping_every:
                # A subscription that Redis (or a proxy) dropped silently shows here.
                pubsub.ping()
                last_ping = now
            if message is not None and message.get("type") == "message":
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        try:
            op = wire.decode(message.get("data", b""))
        except wire.WireError as error:
            self._malformed_message(_text(message.get("channel")), error)
            return
        if op.origin and op.origin == self.node:
            return
        try:
            self._handle(op)
        except Exception:
            logger.exception("backplane: exception applying a %s operation", op.kind)

    def _malformed_message(self, channel: str, error: wire.WireError) -> None:
        """Count a dropped message; log it unless a line was written less than LOG_INTERVAL ago."""
        self._count_malformed()
        now = time.monotonic()
        if now - self._malformed_logged_at < LOG_INTERVAL:
            self._malformed_unlogged += 1
            return
        also = f" ({self._malformed_unlogged} more dropped since the last report)" if self._malformed_unlogged else ""
        logger.warning("backplane: dropped a malformed message on %s: %s%s", channel, error, also)
        self._malformed_logged_at = now
        self._malformed_unlogged = 0

    def _handle(self, op: wire.Operation) -> None:
        local = self.local_node
        if local is None:
            return
        if op.kind == wire.INFO:
            if op.origin and op.client_ids:
                info = local.describe(op.client_ids[0])
                reply = wire.Operation(wire.INFO_REPLY, request_id=op.request_id, reply={"info": info})
                self._enqueue(reply, self.keys.to(op.origin), discount_self=False)
        elif op.kind == wire.INFO_REPLY:
            with self._requests_lock:
                answer = self._requests.get(op.request_id)
            if answer is not None and op.reply is not None:
                answer.set_result(op.reply.get("info"))
        else:
            local.apply(op)

    # -- up and down

    def _connection_lost(self, error: BaseException) -> None:
        if self._up:
            logger.warning("backplane: lost Redis at %s: %s; reconnecting", self.url, error)
        self._set_up(False)
        self._reconnect.set()

    def _set_up(self, up: bool, *, quiet: bool = False) -> None:
        with self._cond:
            if up == self._up:
                return
            self._up = up
            was_up_before = self._ever_up
            self._ever_up = self._ever_up or up
            self._cond.notify_all()
        if not up:
            self._fail_outgoing(BackplaneError(f"the backplane is down (Redis at {self.url} unreachable)"))
        elif was_up_before:
            logger.warning("backplane: reconnected to Redis at %s as node %d", self.url, self.node)
        local = self.local_node
        if quiet or local is None or (up and not was_up_before):
            return
        local.availability_changed(up)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
