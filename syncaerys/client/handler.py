"""What a connection calls in the application: the I/O layer's view of a handler.

The gateway resolves the user's :class:`~syncaerys.Websocket` into its callbacks
(``syncaerys.websocket.Callbacks``); a connection needs only three of them and
names them here, so that ``client/`` does not import the user-facing modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

if TYPE_CHECKING:
    from ..message import Message

__all__ = ["Handler"]


class Handler(Protocol):
    """The callbacks a :class:`~syncaerys.client.connection.Connection` calls, all on the client's thread.

    Each may block; while one runs, that client's socket is not read.
    """

    @property
    def on_open(self) -> Callable[[int, Any], object]:
        """``on_open(client_id, handshake_data)``: after the 101 was written."""
        ...

    @property
    def on_data(self) -> Callable[[int, Message], object]:
        """``on_data(client_id, message)``: at the first frame of each message."""
        ...

    @property
    def on_close(self) -> Callable[[int, int | None, str | None], object]:
        """``on_close(client_id, code, reason)``: once, when the client is gone.

        The code and reason are the session's, which a closed session always has
        (typed optional because a session that is still open has neither).
        """
        ...
