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
from typing import Any

__all__ = ["ClientLogger", "client_logger"]


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
