"""Django's request cycle around each callback: what a view gets, for a websocket's callbacks.

A websocket's callbacks run on the client's thread for as long as it is connected,
far longer than a request. Around each of ``on_handshake``, ``on_open``, ``on_data``
and ``on_close`` the gateway does what Django does around a view:

* before: the queries log is reset and stale database connections are closed
  (:func:`django.db.close_old_connections`: past ``CONN_MAX_AGE``, broken, or left
  in a transaction), and ``CONN_HEALTH_CHECKS`` will check the connection again;
* during: for each database with ``ATOMIC_REQUESTS``, the callback runs in one
  transaction, committed when it returns and rolled back when it raises;
* after: stale connections are closed again, so that with ``CONN_MAX_AGE = 0``
  (Django's default) a client holds a connection only while a callback of its runs.

``on_start`` runs on the thread that starts the gateway and ``on_stop`` on a thread of its
own (see ``Gateway.stop``); neither serves a client: every connection of that thread is
closed after them.

A callback that raises is logged; ``on_handshake`` gives the client a 500, the
others close it with 1011 (after ``ATOMIC_REQUESTS``' rollback).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import BadRequest
from django.core.exceptions import PermissionDenied
from django.core.exceptions import SuspiciousOperation
from django.core.handlers.exception import response_for_exception
from django.db import close_old_connections
from django.db import connections
from django.db import reset_queries
from django.db import transaction
from django.http import Http404
from django.http import HttpRequest
from django.http import HttpResponseBase

from ..response import Response
from ..websocket import Callbacks

__all__ = ["DENIAL", "in_request_cycle", "atomic_request_aliases"]

#: Where the wrapped ``on_handshake`` leaves a Django response it denied with, in the request's
#: environ, for the view to return it as it is (cookies, templates, middleware and all).
DENIAL = "syncaerys.django.denial"

#: What Django turns into a 4xx response when a view raises it; on_handshake may raise them too.
_DENIALS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation)


def atomic_request_aliases() -> list[str]:
    """The database aliases whose settings have ``ATOMIC_REQUESTS``. Thread-safe; never blocks."""
    return [alias for alias in connections if connections.settings[alias].get("ATOMIC_REQUESTS")]


@contextlib.contextmanager
def _atomic_requests() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for alias in atomic_request_aliases():
            stack.enter_context(transaction.atomic(using=alias))
        yield


def _cycled(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        reset_queries()
        close_old_connections()
        try:
            with _atomic_requests():
                return callback(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def _released(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``on_start``/``on_stop``: on a thread that serves no client, which keeps nothing open after them."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        finally:
            connections.close_all()

    return run


def _handshake(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``on_handshake`` as a view: Django's denial exceptions and responses deny the upgrade."""

    @functools.wraps(callback)
    def run(request: HttpRequest, response: Response, /, *args: Any, **route_args: Any) -> Any:
        try:
            result = callback(request, response, *args, **route_args)
        except _DENIALS as error:
            result = response_for_exception(request, error)
        if isinstance(result, HttpResponseBase):
            # The gateway denies with the status; the view returns Django's response itself.
            request.META[DENIAL] = result
            return Response(result.status_code)
        return result

    return _cycled(run)


def in_request_cycle(callbacks: Callbacks) -> Callbacks:
    """``callbacks`` with Django's request cycle around each (see this module). Thread-safe; never blocks."""
    return dataclasses.replace(
        callbacks,
        on_start=_released(callbacks.on_start),
        on_handshake=_handshake(callbacks.on_handshake),
        on_open=_cycled(callbacks.on_open),
        on_data=_cycled(callbacks.on_data),
        on_close=_cycled(callbacks.on_close),
        on_stop=_released(callbacks.on_stop),
    )
