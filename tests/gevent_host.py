"""A syncaerys gateway on gevent's WSGIServer, for tests/test_gevent.py (not a test module).

``python tests/gevent_host.py PORT [--no-patch] [--parties N] [--no-limits]``. Messages are echoed
as ``echo: ...``, except ``together``: its handler waits on a barrier of ``N`` parties
(30 s at most) and answers ``together``, or ``alone`` when the barrier broke, which
only happens if the handlers of different clients cannot block at the same time;
``big N``, answered with ``N`` bytes; ``cblock S``, answered ``cblocked`` after
waiting ``S`` seconds inside C, where gevent cannot switch (the unpatched
``time.sleep``); and ``gsleep S``, answered ``gslept`` after gevent's
cooperative ``time.sleep``; ``mixed S``, a cooperative wait then ``cblock S``.
"""

from __future__ import annotations

import sys

if "--no-patch" not in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import argparse
import logging
import threading
import time

from gevent.pywsgi import WSGIServer

import syncaerys
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Websocket


def wait_in_c(seconds: float) -> None:
    """Wait inside C without yielding to gevent's hub: what an unpatched driver's call does."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey as patched

        patched.get_original("time", "sleep")(seconds)
    else:
        time.sleep(seconds)


class Together(Websocket):
    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties)

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: Message) -> None:
        text = message.result()
        if text == "together":
            try:
                self.barrier.wait(timeout=30)
                answer = "together"
            except threading.BrokenBarrierError:
                answer = "alone"
        elif isinstance(text, str) and text.startswith("cblock "):
            wait_in_c(float(text[7:]))
            answer = "cblocked"
        elif isinstance(text, str) and text.startswith("mixed "):
            time.sleep(0.05)  # the hub runs once, then is blocked
            wait_in_c(float(text[6:]))
            answer = "mixed"
        elif isinstance(text, str) and text.startswith("gsleep "):
            time.sleep(float(text[7:]))
            answer = "gslept"
        elif isinstance(text, str) and text.startswith("big "):
            # More than the socket takes at once: the rest goes through the flusher's loop.
            answer = "x" * int(text[4:])
        else:
            answer = f"echo: {text!s}"
        self.endpoint.send(answer, client_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--no-patch", action="store_true")
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--no-limits", action="store_true", help="no rate limits and no message_timeout")
    args = parser.parse_args()
    off = {"max_frames_per_second": None, "max_bytes_per_minute": None, "message_timeout": None}
    limits = off if args.no_limits else {}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gateway = syncaerys.websocket(Together(args.parties), **limits)  # type: ignore[arg-type]
    WSGIServer(("127.0.0.1", args.port), gateway, log=None).serve_forever()


if __name__ == "__main__":
    main()
