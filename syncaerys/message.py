"""Message: one incoming message, handed to ``on_data`` at its first frame."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .exceptions import ClientException

if TYPE_CHECKING:
    from .connection import Connection
    from .protocol.parser import Frame

__all__ = ["Message"]

Data = str | bytes


class Message:
    """A stream of one incoming message, read while it arrives.

    ``result()`` blocks until the whole message is there; ``read()`` and
    iteration give the chunks as frames arrive (a text chunk never splits a
    character). Both keep reading the client's socket in the calling thread,
    which must be the client's own thread (the one running ``on_data``); that
    is why one client's messages are handled one at a time.

    If the client disconnects or is closed before the message is complete,
    :class:`~syncaerys.ClientException` is raised. A ``timeout`` that expires
    raises :class:`TimeoutError` and leaves the message readable.
    Whatever is left unread when ``on_data`` returns is drained and dropped.
    """

    __slots__ = ("_chunks", "_connection", "_finished", "is_binary")

    def __init__(self, connection: Connection, first: Frame) -> None:
        self._connection = connection
        #: Whether the message is binary (``bytes``) rather than text (``str``).
        self.is_binary: bool = isinstance(first.data, bytes)
        self._chunks: list[Data] = [first.data]
        self._finished = first.fin

    def result(self, timeout: float | None = None) -> Data:
        """Block until the whole message has arrived and return what was not read yet.

        ``str`` for text, ``bytes`` for binary.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished:
            self._receive(deadline)
        chunks = self._chunks
        self._chunks = []
        if len(chunks) == 1:
            return chunks[0]
        if self.is_binary:
            return b"".join(chunks)  # type: ignore[arg-type]
        return "".join(chunks)  # type: ignore[arg-type]

    def read(self, timeout: float | None = None) -> Data | None:
        """Return the next chunk, blocking until one arrives; ``None`` at the end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._chunks:
                chunk = self._chunks.pop(0)
                # Empty frames carry nothing worth returning (as in Aerys).
                if chunk:
                    return chunk
                continue
            if self._finished:
                return None
            self._receive(deadline)

    def __iter__(self) -> Iterator[Data]:
        while True:
            chunk = self.read()
            if chunk is None:
                return
            yield chunk

    def _receive(self, deadline: float | None) -> None:
        connection = self._connection
        if not connection.is_open:
            raise ClientException("the client is closing or gone")
        frame = connection.next_data_frame(deadline)
        if frame is None or not connection.is_open:
            raise ClientException("the client is closing or gone")
        self._chunks.append(frame.data)
        self._finished = frame.fin

    def _drain(self) -> None:
        """Read and drop the rest of the message (after ``on_data`` returned)."""
        self._chunks = []
        try:
            while not self._finished:
                self._receive(None)
                self._chunks = []
        except ClientException:
            self._finished = True

    def __repr__(self) -> str:
        kind = "binary" if self.is_binary else "text"
        state = "complete" if self._finished else "streaming"
        return f"<Message {kind} {state}>"
