"""``settings.SYNCAERYS``: the project-wide defaults of the Django integration, validated at start.

::

    SYNCAERYS = {
        # Default options of every syncaerys.django.websocket() gateway (syncaerys.Options's names).
        "OPTIONS": {"heartbeat_period": 20, "max_message_size": 1 << 20},
        # The server of `manage.py runsyncaerys` (syncaerys.run()'s keywords).
        "SERVER": {"host": "0.0.0.0", "port": 8000, "max_connections": 2000},
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..exceptions import OptionError
from ..options import Options

__all__ = ["SERVER_KEYS", "TOP_KEYS", "gateway_options", "server_options", "validate"]

#: The keys ``settings.SYNCAERYS`` may have.
TOP_KEYS = ("OPTIONS", "SERVER")
#: The keys of ``SYNCAERYS["SERVER"]``: :func:`syncaerys.run`'s keyword arguments.
SERVER_KEYS = (
    "host",
    "port",
    "max_connections",
    "header_timeout",
    "max_header_bytes",
    "trusted_proxies",
    "proxy_header",
    "cpu",
    "switch_interval",
    "batch_scheduling",
    "thread_stack_size",
)


def _section(name: str) -> dict[str, Any]:
    value = _settings().get(name, {})
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"settings.SYNCAERYS[{name!r}] must be a dict, not {value!r}")
    return dict(value)


def _settings() -> Mapping[str, Any]:
    value = getattr(settings, "SYNCAERYS", {})
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"settings.SYNCAERYS must be a dict with the keys {', '.join(TOP_KEYS)}, not {value!r}"
        )
    _refuse_unknown(
        "settings.SYNCAERYS",
        value,
        TOP_KEYS,
        "websocket options go under 'OPTIONS', runsyncaerys's server under 'SERVER'",
    )
    return value


def _refuse_unknown(where: str, given: Mapping[str, Any], known: tuple[str, ...], hint: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ImproperlyConfigured(f"{where} has unknown keys {unknown}: the keys are {', '.join(known)} ({hint})")


def gateway_options(overrides: Mapping[str, Any]) -> Options:
    """``SYNCAERYS["OPTIONS"]`` updated with ``overrides``, validated.

    Raises :class:`~django.core.exceptions.ImproperlyConfigured` for a bad setting and
    :class:`~syncaerys.OptionError` for a bad override. Thread-safe; never blocks.
    """
    defaults = _section("OPTIONS")
    try:
        Options.from_kwargs(defaults)
    except OptionError as error:
        raise ImproperlyConfigured(f"settings.SYNCAERYS['OPTIONS']: {error}") from error
    return Options.from_kwargs({**defaults, **overrides})


def server_options() -> dict[str, Any]:
    """``SYNCAERYS["SERVER"]``, its keys checked (the values are checked by the server). Thread-safe; never blocks."""
    section = _section("SERVER")
    hint = "websocket options such as heartbeat_period go under SYNCAERYS['OPTIONS']"
    _refuse_unknown("settings.SYNCAERYS['SERVER']", section, SERVER_KEYS, hint)
    return section


def validate() -> None:
    """Check the whole of ``settings.SYNCAERYS``; raise ImproperlyConfigured naming what to change.

    Thread-safe; never blocks.
    """
    gateway_options({})
    server_options()
