"""The package's loggers: one per role, and the client id carried by an adapter.

``syncaerys.connection`` logs one client's life (opened, closed, protocol
errors, handler exceptions, slow peers), ``syncaerys.gateway`` the handshakes,
``syncaerys.endpoint`` operations that could not reach another process; the
full table is in the deployment guide (docs/tutorial/deploy.md, "Logs").
The other modules name theirs after themselves (``syncaerys.server``, ...).
All are children of ``syncaerys``, so a handler or level set there covers them.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

__all__ = ["ClientLogger", "client_logger"]


class ClientLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes each message with ``client N:`` and puts ``client_id`` on the record.

    Thread-safe, as :class:`logging.Logger` is.
    """

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """The :class:`logging.LoggerAdapter` hook: prefix ``msg``, set ``client_id``. Thread-safe; never blocks."""
        client_id = self.extra["client_id"] if self.extra is not None else "?"
        kwargs["extra"] = {"client_id": client_id}
        return f"client {client_id}: {msg}", kwargs


def client_logger(logger: logging.Logger, client_id: int) -> ClientLogger:
    """``logger``'s messages about one client. Thread-safe; never blocks."""
    return ClientLogger(logger, {"client_id": client_id})
