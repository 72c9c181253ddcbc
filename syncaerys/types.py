"""Type aliases shared by the public API."""

from __future__ import annotations

__all__ = ["Data", "MessageData"]

#: What the ``Endpoint`` sends: ``str`` as a text message, the bytes-like types as binary.
Data = str | bytes | bytearray | memoryview

#: What a :class:`~syncaerys.Message` holds: ``str`` for text, ``bytes`` for binary.
MessageData = str | bytes
