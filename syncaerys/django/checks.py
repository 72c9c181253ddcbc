"""System checks (``manage.py check``, ``runserver``, ``runsyncaerys``): the websocket routes and the deployment.

* ``syncaerys.E001``: a websocket route passes arguments its handler's ``on_handshake`` cannot take.
* ``syncaerys.E002``: a websocket route captures unnamed regex groups (``on_handshake`` takes names).
* ``syncaerys.E003``: ``settings.SYNCAERYS`` is invalid.
* ``syncaerys.W001``: ``daphne`` is installed before it in ``INSTALLED_APPS``: its ``runserver``
  is an ASGI server, which never hands a WebSocket upgrade to Django's views.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern
from django.urls import URLResolver
from django.urls import get_resolver
from django.urls.resolvers import RegexPattern
from django.urls.resolvers import RoutePattern

from .conf import validate

__all__ = ["register", "check_routes", "check_settings", "check_deployment", "websocket_routes"]


def register() -> None:
    """Register the checks with Django's check framework. Call once (the app's ``ready()``)."""
    checks.register(check_routes, checks.Tags.urls)
    checks.register(check_settings)
    checks.register(check_deployment)


def websocket_routes(resolver: URLResolver | None = None) -> Iterator[tuple[str, Any, set[str], int]]:
    """Each websocket view of the URLconf: (route, view, the argument names it passes, unnamed groups).

    Thread-safe; never blocks (it imports the URLconf the first time).
    """
    from . import WebsocketView

    yield from _walk(resolver or get_resolver(), "", set(), 0, WebsocketView)


def _walk(
    resolver: URLResolver, prefix: str, names: set[str], unnamed: int, view_class: type
) -> Iterator[tuple[str, Any, set[str], int]]:
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        entry_names, entry_unnamed = _captured(entry.pattern)
        captured = names | entry_names
        count = unnamed + entry_unnamed
        if isinstance(entry, URLResolver):
            yield from _walk(entry, route, captured | set(entry.default_kwargs), count, view_class)
        elif isinstance(entry, URLPattern) and isinstance(entry.callback, view_class):
            yield route, entry.callback, captured | set(entry.default_args), count


def _captured(pattern: Any) -> tuple[set[str], int]:
    if isinstance(pattern, RoutePattern):
        return set(pattern.converters), 0
    if isinstance(pattern, RegexPattern):
        regex = pattern.regex
        return set(regex.groupindex), regex.groups - len(regex.groupindex)
    return set(), 0


def check_routes(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 and E002 for each websocket route of the URLconf."""
    problems: list[checks.CheckMessage] = []
    for route, view, names, unnamed in websocket_routes():
        if unnamed:
            problems.append(
                checks.Error(
                    f"the websocket route {route!r} captures {unnamed} unnamed group(s)",
                    hint="name them, (?P<name>...), or use path() converters: on_handshake takes route arguments "
                    "as keywords",
                    obj=view,
                    id="syncaerys.E002",
                )
            )
        try:
            view.gateway.check_route_arguments(route, names)
        except TypeError as error:
            problems.append(checks.Error(str(error), obj=view, id="syncaerys.E001"))
    return problems


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E003 when ``settings.SYNCAERYS`` is invalid."""
    try:
        validate()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="syncaerys.E003")]
    return []


def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W001 when daphne's ASGI ``runserver`` takes the place of Django's."""
    installed = list(settings.INSTALLED_APPS)
    if apps.is_installed("daphne") and installed.index("daphne") < _index_of_ours(installed):
        return [
            checks.Warning(
                "daphne is in INSTALLED_APPS before syncaerys.django: its runserver is an ASGI server, which never "
                "hands a WebSocket upgrade to Django's views",
                hint="serve the websockets through the project's wsgi.py (remove daphne, or use manage.py "
                "runsyncaerys or gunicorn -k gthread)",
                id="syncaerys.W001",
            )
        ]
    return []


def _index_of_ours(installed: list[str]) -> int:
    for index, name in enumerate(installed):
        if name in ("syncaerys.django", "syncaerys.django.apps.SyncaerysConfig"):
            return index
    return len(installed)
