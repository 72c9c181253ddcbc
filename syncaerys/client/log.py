"""The package's loggers: one per role, and the client id carried by a small adapter.

``syncaerys.connection`` logs one client's life (opened, closed, protocol
errors, handler exceptions, slow peers), ``syncaerys.gateway`` the handshakes,
``syncaerys.endpoint`` operations that could not reach another process; the
full table is in the deployment guide (docs/tutorial/deploy.md, "Logs").
The other modules name theirs after themselves (``syncaerys.server``, ...).
All are children of ``syncaerys``, so a handler or level set there covers them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["ClientLogger", "client_logger", "printable"]

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators:
# whatever a log file or a terminal may take for a new line or an escape sequence.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(value: object) -> str:
    """``value`` as text with control characters escaped (``\\n``, ``\\x1b``, ``\\u2028``), for a log line.

    A request's path, headers or close reason come from the client: written
    as they are, ``GET /chat%0a<fake line>`` forges a complete log line.
    Pure; thread-safe; never blocks.
    """
    text = str(value)
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    escaped = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if escaped is not None:
        return escaped
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class ClientLogger:
    """A logger's messages about one client: prefixed with ``client N:``, with ``client_id`` on the record.

    What :class:`logging.LoggerAdapter` does, in two slots instead of two
    dicts: one is kept per connection for its whole life. Thread-safe, as
    :class:`logging.Logger` is; never blocks (beyond the handlers').
    """

    __slots__ = ("_client_id", "_logger")

    def __init__(self, logger: logging.Logger, client_id: int) -> None:
        self._logger = logger
        self._client_id = client_id

    def _log(self, level: int, msg: str, args: tuple[Any, ...], exc_info: bool = False) -> None:
        logger = self._logger
        if logger.isEnabledFor(level):
            extra = {"client_id": self._client_id}
            logger.log(level, f"client {self._client_id}: {msg}", *args, exc_info=exc_info, extra=extra, stacklevel=3)

    def debug(self, msg: str, *args: Any) -> None:
        """Log at DEBUG."""
        self._log(logging.DEBUG, msg, args)

    def info(self, msg: str, *args: Any) -> None:
        """Log at INFO."""
        self._log(logging.INFO, msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        """Log at WARNING."""
        self._log(logging.WARNING, msg, args)

    def exception(self, msg: str, *args: Any) -> None:
        """Log at ERROR with the exception being handled."""
        self._log(logging.ERROR, msg, args, exc_info=True)


def client_logger(logger: logging.Logger, client_id: int) -> ClientLogger:
    """``logger``'s messages about one client."""
    return ClientLogger(logger, client_id)
