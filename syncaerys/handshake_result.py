"""What ``on_handshake`` returned (or raised) that would be a mistake to take as data for ``on_open``."""

from __future__ import annotations

from typing import Any

__all__ = ["denial_mistake"]


def _is_status(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 300 <= value <= 599


def denial_mistake(value: Any) -> str | None:
    """Why ``value``, returned by ``on_handshake``, looks like a denial that would be accepted, or ``None``.

    ``False``, a status code (``403``) and Flask's ``(body, status)`` tuples are what a
    view returns to refuse; returned from ``on_handshake`` they would accept the client
    and reach ``on_open``. Thread-safe; never blocks.
    """
    if value is False:
        what = "False"
    elif _is_status(value):
        what = f"the status {value}"
    elif isinstance(value, tuple) and len(value) in (2, 3) and _is_status(value[1]):
        what = f"a (body, {value[1]}) tuple, as a Flask view returns"
    else:
        return None
    return (
        f"on_handshake returned {what}, which would accept the client and pass it to on_open. To deny, set "
        "response.status (and response.send() a body) on the response it was given, return a response "
        "object with a status of 300 or more, or raise flask.abort(status); to pass such a value to "
        "on_open, wrap it (a dict or a list)"
    )
