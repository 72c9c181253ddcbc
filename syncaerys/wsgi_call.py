"""Call a WSGI application from inside a framework's view and collect its whole answer.

The framework integrations (:mod:`syncaerys.flask`, :mod:`syncaerys.django`) run a
gateway from a view: the gateway answers through ``start_response`` as any WSGI
application does, and the view turns that answer into the framework's own response.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from .serving.handoff import HANDOFF

__all__ = ["call_wsgi"]


def call_wsgi(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call ``app`` with ``environ``; return its status line, headers and whole body.

    Thread-safe; blocks as long as the application does (a gateway: the client's whole life).
    """
    # The view's framework answers after the call: the client is served inside it, not handed off.
    environ.pop(HANDOFF, None)
    started: list[tuple[str, list[tuple[str, str]]]] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [(status, list(headers))]
        return written.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError(f"{app!r} returned without calling start_response")
    status, headers = started[0]
    return status, headers, b"".join(written)
