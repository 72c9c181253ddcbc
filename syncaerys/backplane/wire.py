"""The backplane's wire format: one :class:`Operation` per pub/sub message (sans-I/O).

A message is ``b"SYA1"``, the length of a JSON header as 4 big-endian bytes,
the header, then the payload as raw bytes (so binary messages travel without
base64). Unknown header fields are ignored, so that a newer node can add some.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ["Operation", "encode", "decode", "WireError", "node_of", "SEND", "MULTICAST", "BROADCAST", "CLOSE"]

MAGIC = b"SYA1"
_LENGTH = struct.Struct(">I")

SEND = "send"
MULTICAST = "multicast"
BROADCAST = "broadcast"
CLOSE = "close"
JOIN = "join"
LEAVE = "leave"
INFO = "info"
INFO_REPLY = "info_reply"
KINDS = frozenset({SEND, MULTICAST, BROADCAST, CLOSE, JOIN, LEAVE, INFO, INFO_REPLY})

#: Bits of a client id that count clients within one node.
NODE_SHIFT = 32
#: Node numbers stay below this, so that ids stay below 2**52 (exact in JavaScript numbers).
MAX_NODES = 1 << 20


def node_of(client_id: int) -> int:
    """The node number a client id was issued by (0: a process without a cluster backplane).

    Pure; thread-safe; never blocks.
    """
    return client_id >> NODE_SHIFT


class WireError(ValueError):
    """A backplane message that cannot be decoded."""


@dataclass(frozen=True)
class Operation:
    """One endpoint operation travelling between nodes.

    ``origin`` is the publishing node's number (0 for a write-only
    :class:`~syncaerys.Publisher`); nodes ignore their own operations.
    """

    kind: str
    origin: int = 0
    binary: bool = False
    payload: bytes = b""
    client_ids: tuple[int, ...] = ()
    except_ids: tuple[int, ...] = ()
    room: str | None = None
    code: int = 1000
    reason: str = ""
    request_id: str = ""
    reply: dict[str, Any] | None = field(default=None, compare=False)


def encode(op: Operation) -> bytes:
    """The bytes to publish for ``op``. Pure; thread-safe; never blocks."""
    header: dict[str, Any] = {"k": op.kind, "o": op.origin}
    if op.binary:
        header["b"] = 1
    if op.client_ids:
        header["ids"] = list(op.client_ids)
    if op.except_ids:
        header["x"] = list(op.except_ids)
    if op.room is not None:
        header["r"] = op.room
    if op.kind == CLOSE:
        header["c"] = op.code
        header["why"] = op.reason
    if op.request_id:
        header["q"] = op.request_id
    if op.reply is not None:
        header["a"] = op.reply
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return b"".join((MAGIC, _LENGTH.pack(len(head)), head, op.payload))


def decode(data: bytes) -> Operation:
    """The :class:`Operation` in a published message; :class:`WireError` if malformed.

    Pure; thread-safe; never blocks.
    """
    if not isinstance(data, (bytes, bytearray)) or data[:4] != MAGIC or len(data) < 8:
        raise WireError("not a syncaerys backplane message")
    (length,) = _LENGTH.unpack_from(data, 4)
    if 8 + length > len(data):
        raise WireError("truncated backplane message")
    try:
        header = json.loads(bytes(data[8 : 8 + length]))
        kind = header["k"]
        if kind not in KINDS:
            raise WireError(f"unknown operation {kind!r}")
        room = header.get("r")
        reply = header.get("a")
        return Operation(
            kind=kind,
            origin=int(header.get("o", 0)),
            binary=bool(header.get("b", 0)),
            payload=bytes(data[8 + length :]),
            client_ids=tuple(int(i) for i in header.get("ids", ())),
            except_ids=tuple(int(i) for i in header.get("x", ())),
            room=None if room is None else str(room),
            code=int(header.get("c", 1000)),
            reason=str(header.get("why", "")),
            request_id=str(header.get("q", "")),
            reply=reply if isinstance(reply, dict) else None,
        )
    except WireError:
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise WireError(f"malformed backplane message: {error}") from None
