"""Each of syncaerys's signal handlers run again inside itself, for tests/test_signal_handlers.py.

Not a test module: ``python tests/signal_handlers.py gunicorn-term|gunicorn-int|run`` installs
the handlers as that host does (gunicorn's hooks on a stand-in worker; ``syncaerys.run``),
delivers the signal, and at every line the handler executes, runs the handler again inside it,
as a second signal does (gunicorn's worker gets SIGTERM twice on every stop: the process group's
and the master's). No timing makes a second signal land inside the first handler on demand; this
lands one at every line. A handler that holds a lock there waits for itself: faulthandler then
prints the stacks and exits with 1. Otherwise it prints one JSON line.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
import time
import types
from typing import Any

from syncaerys import gunicorn as hooks

#: Seconds before a deadlocked handler is reported (the stacks, exit status 1).
DEADLOCK_BOUND = 5.0

Handler = Any


def nested_at_every_line(handler: Handler, signum: int) -> int:
    """Run ``handler``; at each of its lines (callees included), run it again inside; return how many."""
    nested = 0
    inside = False

    def tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        nonlocal nested, inside
        if inside:
            return None
        if event == "line":
            inside = True
            try:
                handler(signum, None)
            finally:
                inside = False
            nested += 1
        return tracer

    sys.settrace(tracer)
    try:
        handler(signum, None)
    finally:
        sys.settrace(None)
    return nested


class StandInWorker:
    """What the hooks read of gunicorn's worker."""

    alive = True
    cfg = None
    log = None

    def __init__(self) -> None:
        self.pid = os.getpid()


def gunicorn(signum: int) -> dict[str, Any]:
    # gunicorn's own handlers are in place before post_worker_init (Worker.init_signals).
    signal.signal(signal.SIGTERM, lambda s, f: None)
    hooks.post_worker_init(StandInWorker())
    if signum == signal.SIGTERM:
        handler = signal.getsignal(signal.SIGTERM)
    else:
        # gunicorn's SIGINT/SIGQUIT handler calls the worker_int hook.
        def handler(s: int, f: types.FrameType | None) -> None:
            hooks.worker_int(StandInWorker())

    return {"nested": nested_at_every_line(handler, signum)}


def run() -> dict[str, Any]:
    import syncaerys

    result: dict[str, Any] = {}
    original = signal.signal

    def watched(signum: int, handler: Any) -> Any:
        # run() installs its first handlers in the main thread and waits there for them.
        if callable(handler) and signum == signal.SIGTERM and "installed" not in result:
            result["installed"] = True

            def nesting(s: int, f: types.FrameType | None) -> None:
                result["nested"] = nested_at_every_line(handler, s)

            return original(signum, nesting)
        return original(signum, handler)

    def signal_once_installed() -> None:
        deadline = time.monotonic() + DEADLOCK_BOUND
        while "installed" not in result and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal = watched  # type: ignore[assignment]
    threading.Thread(target=signal_once_installed, daemon=True).start()
    syncaerys.run(syncaerys.websocket(syncaerys.Websocket()), host="127.0.0.1", port=0, cpu=None)
    signal.signal = original
    del result["installed"]
    result["returned"] = True
    return result


if __name__ == "__main__":
    faulthandler.dump_traceback_later(DEADLOCK_BOUND, exit=True)
    which = sys.argv[1]
    if which == "gunicorn-term":
        outcome = gunicorn(signal.SIGTERM)
    elif which == "gunicorn-int":
        outcome = gunicorn(signal.SIGINT)
    else:
        outcome = run()
    faulthandler.cancel_dump_traceback_later()
    print(json.dumps(outcome), flush=True)
