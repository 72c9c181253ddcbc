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
  greenlet (gevent), or in a thread pool (asyncio servers).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time

PREFIX = "broadcast:"
BLOCK_PREFIX = '{"block":'


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


def parse_broadcast(message: object) -> tuple[int, str] | None:
    """``(count, payload)`` for a ``broadcast:N:SIZE`` text message, else None."""
    if isinstance(message, str) and message.startswith(PREFIX):
        _, count, size = message.split(":")
        return int(count), "x" * int(size)
    return None


def is_block(message: object) -> bool:
    """Whether ``message`` asks for the blocking work of :func:`block`."""
    return isinstance(message, str) and message.startswith(BLOCK_PREFIX)


def block(message: str) -> str:
    """The blocking handler: ``time.sleep(request["block"])``, then json.loads/json.dumps.

    The reply carries the request's ``id`` and the time slept, so the load
    generator can tell it from an echo.
    """
    request = json.loads(message)
    time.sleep(request["block"])
    return json.dumps({"id": request.get("id"), "slept": request["block"], "ok": True})
