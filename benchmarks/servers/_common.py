"""What every benchmark server shares: the port argument, the fd limit, quiet logging.

Protocol (the same in every server): every message is echoed back to its sender,
except

* a text message ``broadcast:N:SIZE``, which makes the server send N text
  messages of SIZE bytes to every connected client (the sender included) and is
  not echoed itself;
* a text message starting with ``{"block":`` (JSON, e.g.
  ``{"block":0.005,"id":1}``), which gets the blocking work of :func:`block` as
  a handler would do it: sleep that many seconds, then a JSON round trip. Its
  answer is the JSON reply, not an echo. Each server runs :func:`block` where
  its users would: on the client's thread (thread-per-client servers), on a
  greenlet (gevent), or in a thread pool (asyncio servers);
* a text message starting with ``{"blockc":`` (``{"blockc":0.005,"id":1}``), which
  gets :func:`block` too, but blocking inside C instead of in ``time.sleep``: a
  sqlite3 query that waits that long for a lock (see :func:`sqlite_wait`).
  sqlite3 releases the GIL for the wait, and gevent cannot patch it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import resource
import sqlite3
import sys
import tempfile
import threading
import time

PREFIX = "broadcast:"
BLOCK_PREFIX = '{"block":'
BLOCKC_PREFIX = '{"blockc":'


def setup() -> int:
    """Parse the port, raise the fd soft limit to the hard limit, log warnings only."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PORT")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
    # The same for every peer: no per-connection INFO lines (werkzeug would add
    # its own INFO handler if the root logger had none).
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # werkzeug sets its own logger to INFO (one line per request) unless a level is set.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # An experiment knob of the runner (--switch-interval), the same for every peer.
    if os.environ.get("BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    return int(sys.argv[1])


class LockedDatabase:
    """A real sqlite3 database file whose exclusive lock one connection holds for good.

    Every other connection's query then waits in C for that lock, up to its
    busy timeout (``sqlite3.connect(timeout=...)``: sqlite's busy handler sleeps
    inside ``sqlite3_step``/``sqlite3_prepare``, which Python runs with the GIL
    released), and gives up with "database is locked". That is the blocking
    call: a fixed wait in C that costs no CPU, like a database driver waiting
    for its server, and that gevent cannot turn into a cooperative one.
    """

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="syncaerys-bench-", suffix=".sqlite3")
        os.close(fd)
        setup = sqlite3.connect(self.path)
        setup.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
        setup.executemany("INSERT INTO item (name) VALUES (?)", [(f"item {i}",) for i in range(1000)])
        setup.commit()
        setup.close()
        # Rollback-journal mode (sqlite's default): an EXCLUSIVE lock keeps readers out.
        self.holder = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.holder.execute("BEGIN EXCLUSIVE")
        self.local = threading.local()  # one connection per thread (per greenlet under gevent)

    def wait(self, seconds: float) -> str:
        """Run ``SELECT count(*) FROM item``, which waits ``seconds`` for the lock and fails; the error's text."""
        connections: dict[float, sqlite3.Connection] = self.local.__dict__.setdefault("connections", {})
        conn = connections.get(seconds)
        if conn is None:
            conn = connections[seconds] = sqlite3.connect(self.path, timeout=seconds)
        try:
            conn.execute("SELECT count(*) FROM item").fetchone()
        except sqlite3.OperationalError as error:
            return str(error)
        raise RuntimeError(f"{self.path} is not locked: the benchmark's query did not wait")

    def remove(self) -> None:
        for suffix in ("", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(self.path + suffix)


_database: LockedDatabase | None = None
_database_lock = threading.Lock()


def sqlite_wait(seconds: float) -> str:
    """Block ``seconds`` inside sqlite3 (C, GIL released, unpatchable by gevent). Thread-safe."""
    global _database
    if _database is None:
        with _database_lock:
            if _database is None:
                _database = LockedDatabase()
                atexit.register(_database.remove)
    return _database.wait(seconds)


def parse_broadcast(message: object) -> tuple[int, str] | None:
    """``(count, payload)`` for a ``broadcast:N:SIZE`` text message, else None."""
    if isinstance(message, str) and message.startswith(PREFIX):
        _, count, size = message.split(":")
        return int(count), "x" * int(size)
    return None


def is_block(message: object) -> bool:
    """Whether ``message`` asks for the blocking work of :func:`block` (``{"block":`` or ``{"blockc":``)."""
    return isinstance(message, str) and message.startswith((BLOCK_PREFIX, BLOCKC_PREFIX))


def block(message: str) -> str:
    """The blocking handler: json.loads, ``time.sleep(request["block"])``, then json.dumps.

    With ``{"blockc": seconds}`` the wait is :func:`sqlite_wait` instead of
    ``time.sleep``. The reply carries the request's ``id`` and the time
    waited, so the load generator can tell it from an echo.
    """
    request = json.loads(message)
    if "blockc" in request:
        seconds = request["blockc"]
        sqlite_wait(seconds)
    else:
        seconds = request["block"]
        time.sleep(seconds)
    return json.dumps({"id": request.get("id"), "slept": seconds, "ok": True})
