"""A client handed to a thread of its own, so that its upgrade request can end (syncaerys's own server).

A gateway that runs its client inside the WSGI call keeps the whole request
alive for the client's life: werkzeug's handler, the environ and its strings,
``http.server``'s and ``socketserver``'s state, their frames, and the stack
pages the request's parsing touched (about 8 KiB per idle client). Under
:data:`HANDOFF` in the environ of an upgrade request, syncaerys's server offers
a :class:`Handoff`: the gateway writes its 101, starts the client on a fresh
thread, and returns; the request ends as an upgrade, writing nothing more, and
its objects and thread go. The socket is closed by whichever of the two
threads is done last: the client's, once the client is gone, or the request's.

Only the application the server called directly may take the offer: a
framework's view (Flask, Django) runs the client inside its own request cycle,
and :func:`syncaerys.wsgi_call.call_wsgi` removes the offer before it calls a
gateway.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable

__all__ = ["HANDOFF", "Handoff"]

#: The environ key of the offer (absent under other hosts, and inside a framework's view).
HANDOFF = "syncaerys.handoff"

logger = logging.getLogger("syncaerys.http")


class Handoff:
    """One upgrade request's offer to serve its client on a thread of its own.

    :meth:`start` is called from the request's thread (by the gateway) and
    :meth:`request_over` from it too (by the server, last); neither blocks.
    """

    __slots__ = ("_client_gone", "_close", "_lock", "started")

    def __init__(self) -> None:
        #: A thread took the client: the request's thread must leave the socket open and write nothing more.
        self.started = False
        self._lock = threading.Lock()
        self._close: Callable[[], None] | None = None
        self._client_gone = False

    def start(self, run: Callable[[], None]) -> bool:
        """Run ``run`` (the client's life) on a new thread, in a copy of this thread's context.

        False, and nothing started, when no thread can be started (the process
        is at its thread limit): the caller then runs the client itself.
        """
        context = contextvars.copy_context()
        thread = threading.Thread(target=self._serve, args=(context, run), name="syncaerys-client", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            return False
        self.started = True
        return True

    def request_over(self, close: Callable[[], None]) -> None:
        """The request's thread is done with the socket: ``close`` closes it, now if the client is gone."""
        with self._lock:
            last = self._client_gone
            self._close = None if last else close
        if last:
            close()

    def _serve(self, context: contextvars.Context, run: Callable[[], None]) -> None:
        try:
            context.run(run)
        except Exception:
            logger.exception("error while serving a client")
        finally:
            with self._lock:
                close, self._close = self._close, None
                self._client_gone = True
            if close is not None:
                close()
