"""The options of :func:`syncaerys.websocket`, their defaults and validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields
from typing import Any
from typing import TypedDict

from .backplane.base import Backplane
from .exceptions import OptionError
from .protocol.handshake import ANY_ORIGIN
from .protocol.handshake import LOOPBACK_IF_LOCAL
from .protocol.handshake import SAME_ORIGIN
from .protocol.handshake import OriginCheck
from .protocol.handshake import host_name

__all__ = ["Options", "WebsocketOptions"]

MiB = 1 << 20


@dataclass(frozen=True)
class Options:
    """Validated gateway options. ``None`` turns a limit, rate limit or the heartbeat off.

    Sizes are in bytes, periods in seconds.

    Frozen, so safe to share between threads.
    """

    # Limits on what the client sends.
    #: Largest inbound message; larger ones close the client with 1009.
    max_message_size: int | None = 2 * MiB
    #: Largest inbound frame; larger ones close the client with 1009.
    max_frame_size: int | None = 2 * MiB
    #: Inbound byte budget (burst), refilled continuously at 1/60 of it per second.
    max_bytes_per_minute: int | None = 8 * MiB
    #: Inbound frames per second (burst of this many, refilled at this rate).
    max_frames_per_second: int | None = 100
    #: Whether binary messages are refused with 1003.
    text_only: bool = False

    # Sending.
    #: Outbound messages longer than this are split into equal fragments.
    auto_frame_size: int | None = 65_527
    #: Bytes queued for one client past which, once its socket has stayed full
    #: for a second (it is not keeping up), it is closed with 1008; past four
    #: times this, at once. Each queued frame counts 192 bytes besides its own.
    max_send_queue: int | None = 16 * MiB

    # Timeouts.
    #: Idle time before a ping is sent to the client.
    heartbeat_period: float | None = 10.0
    #: Unanswered pings after which the client is closed with 1008.
    queued_ping_limit: int = 3
    #: How long to wait for the peer's close frame (and for our close to be written).
    close_period: float = 3.0
    #: How long a message (or a frame) may take to arrive whole, from its first
    #: byte; past it the client is closed with 1008. A client trickling the rest
    #: of a message pins what it sent so far (with compression, up to
    #: ``max_message_size`` inflated) for as long as it likes otherwise.
    message_timeout: float | None = 60.0

    # Handshake.
    #: Subprotocols accepted, in order of preference: the first one the client offers wins.
    subprotocols: tuple[str, ...] = ()
    #: Which pages may open a websocket (cross-site WebSocket hijacking rides on
    #: the victim's cookies). ``"same-origin"`` (the default): a request with an
    #: ``Origin`` header must name the host it was sent to (``Host``); clients
    #: that send none (not browsers) pass. Or exact origins, compiled regexes
    #: and ``None`` (no header), or a callable of the origin; ``"*"`` or
    #: ``None``: no check.
    allowed_origins: OriginCheck | str | None = SAME_ORIGIN
    #: Which ``Host`` names a handshake may carry (DNS rebinding gives a page
    #: of the attacker's the same name in Host and Origin). ``"loopback-if-local"``
    #: (the default): on a server bound to a loopback address, only ``localhost``,
    #: ``*.localhost`` and loopback addresses, unless the request came through
    #: a proxy (one of ``trusted_proxies``, or it carries ``X-Forwarded-For``,
    #: ``Forwarded``, ``X-Real-IP`` or ``Via``, which a browser's WebSocket
    #: cannot send); on other binds, any. Or names (``".example.com"``: it
    #: and its subdomains; ``"*"``: any), as Django's ``ALLOWED_HOSTS``.
    #: ``None``: no check. Refused with 403.
    allowed_hosts: tuple[str, ...] | str | None = LOOPBACK_IF_LOCAL

    # Compression (permessage-deflate, RFC 7692).
    #: Negotiate permessage-deflate when the client offers it.
    compression: bool = False
    #: Messages shorter than this go out uncompressed.
    compression_threshold: int = 860
    #: The window our compressor uses (9-15; less if the client asks): memory against ratio.
    compression_window_bits: int = 12
    #: zlib's memLevel for our compressor (1-9): memory against speed.
    compression_memory_level: int = 5

    # Beyond one process.
    #: Carries endpoint operations to the other processes of a cluster
    #: (:class:`~syncaerys.RedisBackplane`); ``None``: this process only.
    backplane: Backplane | None = None

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Options:
        """Validate keyword options; raises :class:`OptionError` naming the option. Thread-safe; never blocks."""
        known = {f.name for f in fields(cls)}
        for name in kwargs:
            if name not in known:
                raise OptionError(f"unknown option {name!r}; known options: {', '.join(sorted(known))}")
        values = dict(kwargs)
        # In the table's order, so that of two bad options the same one is named first every time.
        for name, check in _CHECKS.items():
            if name in values:
                values[name] = check(name, values[name])
        return cls(**values)


class WebsocketOptions(TypedDict, total=False):
    """The keyword options of :func:`syncaerys.websocket`, for type checkers.

    The same names and meanings as :class:`Options`; a misspelt or mistyped
    option is a ``mypy`` error in typed code and an
    :class:`~syncaerys.OptionError` at run time.
    """

    max_message_size: int | None
    max_frame_size: int | None
    max_bytes_per_minute: int | None
    max_frames_per_second: int | None
    text_only: bool
    auto_frame_size: int | None
    max_send_queue: int | None
    heartbeat_period: float | None
    queued_ping_limit: int
    close_period: float
    message_timeout: float | None
    subprotocols: str | Iterable[str]
    allowed_origins: OriginCheck | str | None
    allowed_hosts: Iterable[str] | str | None
    compression: bool
    compression_threshold: int
    compression_window_bits: int
    compression_memory_level: int
    backplane: Backplane | None


def _check_int(name: str, value: Any, *, optional: bool, minimum: int = 1) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"option {name!r} must be a positive int{' or None' if optional else ''}, not {value!r}")
    if value < minimum:
        raise OptionError(f"option {name!r} must be at least {minimum}, not {value!r}")


def _check_period(name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"option {name!r} must be a number of seconds{' or None' if optional else ''}, not {value!r}")
    if not value > 0:
        raise OptionError(f"option {name!r} must be greater than 0, not {value!r}")


def _check_subprotocols(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        result = tuple(value)
    except TypeError:
        raise OptionError(f"option 'subprotocols' must be an iterable of str, not {value!r}") from None
    for item in result:
        if not isinstance(item, str) or not item or any(c in item for c in " ,\r\n\t"):
            raise OptionError(f"option 'subprotocols' holds an invalid name: {item!r}")
    return result


def _check_origins(value: Any) -> OriginCheck | str | None:
    if value is None or callable(value) or value in (SAME_ORIGIN, ANY_ORIGIN):
        checker: OriginCheck | str | None = value
        return checker
    if isinstance(value, str):
        value = (value,)
    try:
        result = tuple(value)
    except TypeError:
        raise OptionError(f"option 'allowed_origins' must be an iterable or a callable, not {value!r}") from None
    for item in result:
        if item is not None and not isinstance(item, (str, re.Pattern)):
            raise OptionError(f"option 'allowed_origins' holds {item!r}: use str, re.Pattern or None")
    return result


def _check_hosts(value: Any) -> tuple[str, ...] | str | None:
    if value is None or value in (LOOPBACK_IF_LOCAL, "*"):
        checked: tuple[str, ...] | str | None = value
        return checked
    if isinstance(value, str):
        value = (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise OptionError(f"option 'allowed_hosts' must be a list of host names, not {value!r}") from None
    normalized = []
    for name in names:
        text = name.strip().lower() if isinstance(name, str) else ""
        # "*" and ".example.com" as they are; a name or address as the Host check compares it (no port).
        exact = host_name(text[1:] if text.startswith(".") else text) if text and text != "*" else None
        if text != "*" and (exact is None or any(c in text for c in "/ \t")):
            raise OptionError(f"option 'allowed_hosts' holds {name!r}: use names such as 'chat.example.com'")
        normalized.append(text if text == "*" or text.startswith(".") else str(exact))
    return tuple(normalized)


def _optional_int(name: str, value: Any) -> Any:
    _check_int(name, value, optional=True)
    return value


def _required_int(minimum: int) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        _check_int(name, value, optional=False, minimum=minimum)
        return value

    return check


def _period(optional: bool) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        _check_period(name, value, optional=optional)
        return value

    return check


def _bool(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise OptionError(f"option {name!r} must be a bool, not {type(value).__name__}")
    return value


def _between(low: int, high: int) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        _check_int(name, value, optional=False)
        if not low <= value <= high:
            raise OptionError(f"option {name!r} must be between {low} and {high}, not {value!r}")
        return value

    return check


def _backplane(name: str, value: Any) -> Any:
    if value is not None and not isinstance(value, Backplane):
        raise OptionError(f"option 'backplane' must be a Backplane such as RedisBackplane(url), not {value!r}")
    return value


#: Each option's check, which raises OptionError or returns the value to keep (normalized).
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "max_message_size": _optional_int,
    "max_frame_size": _optional_int,
    "max_bytes_per_minute": _optional_int,
    "max_frames_per_second": _optional_int,
    "auto_frame_size": _optional_int,
    "max_send_queue": _optional_int,
    "queued_ping_limit": _required_int(1),
    "heartbeat_period": _period(optional=True),
    "close_period": _period(optional=False),
    "message_timeout": _period(optional=True),
    "text_only": _bool,
    "compression": _bool,
    "compression_threshold": _required_int(0),
    "compression_window_bits": _between(9, 15),
    "compression_memory_level": _between(1, 9),
    "subprotocols": lambda name, value: _check_subprotocols(value),
    "allowed_origins": lambda name, value: _check_origins(value),
    "allowed_hosts": lambda name, value: _check_hosts(value),
    "backplane": _backplane,
}
