"""Message: one incoming message, handed to ``on_data`` at its first frame."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Final
from typing import Protocol

from .exceptions import ClientClosed
from .exceptions import ClientException
from .exceptions import ConcurrencyError
from .protocol.parser import Frame
from .types import MessageData

__all__ = ["Message", "FrameSource"]


class FrameSource(Protocol):
    """Where a :class:`Message` reads its next frames: the client's connection.

    Used on the client's own thread only: :meth:`next_data_frame` blocks,
    :attr:`is_open` does not.
    """

    @property
    def is_open(self) -> bool:
        """Whether the client is open; a message of a closing client raises ClientException. Never blocks."""
        ...

    def next_data_frame(self, deadline: float | None) -> Frame | None:
        """The next data frame (blocking until ``deadline``); ``None`` when the connection is over."""
        ...


#: Unread chunks kept as they came; past this many, small ones are merged (see _coalesce).
_KEPT_CHUNKS: Final = 32

_get_ident: Final = threading.get_ident


def _coalesce(chunks: list[MessageData]) -> None:
    """Merge the tail of ``chunks`` so that a message of many tiny frames keeps few objects.

    Each chunk past the first ``_KEPT_CHUNKS`` ends up more than twice the size
    of the next, so there are at most about log2(message size) of them, and
    every byte is copied O(log n) times. A message of a million one-byte
    frames would otherwise hold a million objects (some 50 bytes each) for a
    million bytes of data.
    """
    while len(chunks) > _KEPT_CHUNKS and len(chunks[-2]) <= 2 * len(chunks[-1]):
        last = chunks.pop()
        chunks[-1] = chunks[-1] + last  # type: ignore[operator]


class Message:
    """A stream of one incoming message, read while it arrives.

    You never construct one: ``on_data`` is given it.

    ``result()`` blocks until the whole message is there; ``read()`` and
    iteration give the chunks as frames arrive (a text chunk never splits a
    character). Both keep reading the client's socket in the calling thread,
    which must be the client's own thread, during the ``on_data`` call the
    message was given to: anywhere else they raise
    :class:`~syncaerys.ConcurrencyError` (read the message in ``on_data`` and
    hand the value to other threads). That is why one client's messages are
    handled one at a time.

    If the client disconnects or is closed before the message is complete,
    :class:`~syncaerys.ClientClosed` (a :class:`~syncaerys.ClientException`) is raised. A ``timeout`` that expires
    raises :class:`TimeoutError` and leaves the message readable.
    Whatever is left unread when ``on_data`` returns is drained and dropped
    (:meth:`close`).

    Not thread-safe by design: only the thread running ``on_data`` may read it.
    """

    __slots__ = ("_chunks", "_finished", "_handling", "_reader", "_rest", "_source", "is_binary")

    def __init__(self, source: FrameSource, first: Frame) -> None:
        self._source = source
        #: Whether the message is binary (``bytes``) rather than text (``str``).
        self.is_binary: bool = isinstance(first.data, bytes)
        # Empty frames add nothing: a message of empty fragments must not grow a list.
        self._chunks: list[MessageData] = [first.data] if first.data else []
        self._finished = first.fin
        # What result() returned, so that it returns the same value every time.
        self._rest: MessageData | None = None
        self._reader = _get_ident()
        self._handling = True

    def result(self, timeout: float | None = None) -> MessageData:
        """Block until the whole message has arrived and return what ``read()`` has not taken.

        ``str`` for text, ``bytes`` for binary. Idempotent: every call returns
        the same value. Blocks (reading the socket); raises
        :class:`~syncaerys.ConcurrencyError` off the ``on_data`` call.
        """
        if not self._handling or _get_ident() != self._reader:
            self._check_reader()  # raises
        if self._rest is not None:
            return self._rest
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished:
            self._receive(deadline)
        chunks = self._chunks
        self._chunks = []
        rest: MessageData
        if len(chunks) == 1:
            rest = chunks[0]
        elif self.is_binary:
            rest = b"".join(chunks)  # type: ignore[arg-type]
        else:
            rest = "".join(chunks)  # type: ignore[arg-type]
        self._rest = rest
        return rest

    def read(self, timeout: float | None = None) -> MessageData | None:
        """Return the next chunk, blocking until one arrives; ``None`` at the end.

        After :meth:`result` there is nothing left to read: ``None``. Blocks
        (reading the socket); raises :class:`~syncaerys.ConcurrencyError` off
        the ``on_data`` call.
        """
        self._check_reader()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._chunks:
                return self._chunks.pop(0)
            if self._finished:
                return None
            self._receive(deadline)

    def __iter__(self) -> Iterator[MessageData]:
        while True:
            chunk = self.read()
            if chunk is None:
                return
            yield chunk

    def _check_reader(self) -> None:
        if not self._handling:
            raise ConcurrencyError(
                "this Message was read after its on_data call returned (or after close()); the connection has "
                "moved on to the next message. Read it in on_data (message.result()) and hand the value to "
                "other threads"
            )
        if _get_ident() != self._reader:
            raise ConcurrencyError(
                f"this Message was read from thread {threading.current_thread().name!r}; only the client's own "
                "thread can read it, during on_data. Read it there (message.result()) and hand the value on"
            )

    def _receive(self, deadline: float | None) -> None:
        source = self._source
        if not source.is_open:
            raise ClientClosed("the client is closing or gone")
        frame = source.next_data_frame(deadline)
        if frame is None or not source.is_open:
            raise ClientClosed("the client is closing or gone")
        data = frame.data
        if data:
            chunks = self._chunks
            chunks.append(data)
            if len(chunks) > _KEPT_CHUNKS:
                _coalesce(chunks)
        self._finished = frame.fin

    def close(self) -> None:
        """Read and drop what is left of the message; reading it afterwards raises ConcurrencyError.

        syncaerys calls it when ``on_data`` returns; call it to skip the rest of
        a message you do not want. Blocks until the last frame has arrived (or
        the client is gone); the client's own thread only. Idempotent.
        """
        if not self._handling:
            return
        if _get_ident() != self._reader:
            self._check_reader()  # raises
        self._chunks = []
        if self._finished:
            self._handling = False
            return
        try:
            while not self._finished:
                self._receive(None)
                self._chunks = []
        except ClientException:
            self._finished = True
        finally:
            self._handling = False

    def __repr__(self) -> str:
        kind = "binary" if self.is_binary else "text"
        state = "complete" if self._finished else "streaming"
        return f"<Message {kind} {state}>"
