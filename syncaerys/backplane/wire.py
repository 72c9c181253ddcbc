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

from ..protocol.frames import validate_close_arguments

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

    Anyone who can publish on the channel can put bytes here, so every field of
    every kind is checked against what a node may act on: ids are client ids,
    a close code and reason are ones an endpoint may send (RFC 6455 7.4), a
    text payload is UTF-8 (RFC 6455 8.1), strings encode to UTF-8, and each
    kind has the fields it needs. Nothing else than :class:`WireError` is
    raised, whatever ``data`` is. Pure; thread-safe; never blocks.
    """
    if not isinstance(data, (bytes, bytearray)) or data[:4] != MAGIC or len(data) < 8:
        raise WireError("not a syncaerys backplane message")
    (length,) = _LENGTH.unpack_from(data, 4)
    if 8 + length > len(data):
        raise WireError("truncated backplane message")
    try:
        header = json.loads(bytes(data[8 : 8 + length]))
    except (ValueError, RecursionError) as error:
        # ValueError: not JSON, not UTF-8, an integer of too many digits; RecursionError: nested too deep.
        raise WireError(f"malformed backplane message: the header is not JSON ({type(error).__name__})") from None
    if not isinstance(header, dict):
        raise WireError("malformed backplane message: the header is not a JSON object")
    kind = header.get("k")
    if not isinstance(kind, str) or kind not in KINDS:
        raise WireError(f"unknown operation {_shown(kind)}")
    binary = _flag(header, "b")
    payload = bytes(data[8 + length :])
    if not binary and kind in _CARRY_PAYLOAD and not _is_utf8(payload):
        raise WireError(f"malformed {kind} operation: a text payload that is not UTF-8")
    code, reason = 1000, ""
    if kind == CLOSE:
        code = _integer(header, "c", 1000, 0, 1 << 31)
        reason = _string(header, "why", "")
        try:
            validate_close_arguments(code, reason)
        except ValueError as error:
            raise WireError(f"malformed close operation: {error}") from None
    reply = header.get("a")
    if reply is not None and not (isinstance(reply, dict) and _is_info(reply.get("info"))):
        raise WireError("malformed backplane message: field 'a' is not an info reply")
    room = header.get("r")
    op = Operation(
        kind=kind,
        origin=_integer(header, "o", 0, 0, MAX_NODES - 1),
        binary=binary,
        payload=payload,
        client_ids=_ids(header, "ids"),
        except_ids=_ids(header, "x"),
        room=None if room is None else _string(header, "r", ""),
        code=code,
        reason=reason,
        request_id=_string(header, "q", "", _MAX_REQUEST_ID),
        reply=reply,
    )
    _check_fields(op)
    return op


#: The kinds whose payload is a message to clients.
_CARRY_PAYLOAD = frozenset({SEND, MULTICAST, BROADCAST})
#: A request id is 16 hex digits; a little room for other publishers.
_MAX_REQUEST_ID = 64
#: Client ids stay below 2**52 (see MAX_NODES).
_MAX_CLIENT_ID = (MAX_NODES << NODE_SHIFT) - 1


def _check_fields(op: Operation) -> None:
    """Raise :class:`WireError` unless ``op`` has the fields its kind needs."""
    kind = op.kind
    needs_one = kind in (SEND, INFO)
    if needs_one and len(op.client_ids) != 1:
        raise WireError(f"malformed {kind} operation: it names {len(op.client_ids)} clients, not one")
    if kind in (MULTICAST, CLOSE, JOIN, LEAVE) and not op.client_ids:
        raise WireError(f"malformed {kind} operation: it names no client")
    if kind in (JOIN, LEAVE) and op.room is None:
        raise WireError(f"malformed {kind} operation: it names no room")
    if kind in (INFO, INFO_REPLY) and not op.request_id:
        raise WireError(f"malformed {kind} operation: it has no request id")
    if kind == INFO and not op.origin:
        raise WireError("malformed info operation: it has no origin to answer to")
    if kind == INFO_REPLY and op.reply is None:
        raise WireError("malformed info_reply operation: it has no reply")


def _shown(value: object) -> str:
    """A short repr of a hostile value, for an error message."""
    text = repr(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(header: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = header.get(key, default)
    # bool is an int, and 1.0 or 1e400 are not integers on this wire.
    if type(value) is not int or not low <= value <= high:
        raise WireError(f"malformed backplane message: field {key!r} is {_shown(value)}, not an integer {low}-{high}")
    return value


def _flag(header: dict[str, Any], key: str) -> bool:
    value = header.get(key, 0)
    if type(value) not in (int, bool) or value not in (0, 1):
        raise WireError(f"malformed backplane message: field {key!r} is {_shown(value)}, not 0 or 1")
    return bool(value)


def _ids(header: dict[str, Any], key: str) -> tuple[int, ...]:
    value = header.get(key, ())
    if not isinstance(value, (list, tuple)):
        raise WireError(f"malformed backplane message: field {key!r} is {_shown(value)}, not a list of client ids")
    for i in value:
        if type(i) is not int or not 0 < i <= _MAX_CLIENT_ID:
            raise WireError(f"malformed backplane message: field {key!r} holds {_shown(i)}, not a client id")
    return tuple(value)


def _string(header: dict[str, Any], key: str, default: str, max_bytes: int | None = None) -> str:
    value = header.get(key, default)
    if not isinstance(value, str):
        raise WireError(f"malformed backplane message: field {key!r} is {_shown(value)}, not a string")
    try:
        # JSON can carry lone surrogates (\ud800), which no UTF-8 consumer (Redis, a close frame) accepts.
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise WireError(f"malformed backplane message: field {key!r} is not valid Unicode") from None
    if max_bytes is not None and size > max_bytes:
        raise WireError(f"malformed backplane message: field {key!r} is {size} bytes, at most {max_bytes} allowed")
    return value


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_info(info: object) -> bool:
    """Whether ``info`` may be what a node reports of a client (``ClientInfo.as_dict()`` or ``None``)."""
    return info is None or (isinstance(info, dict) and all(isinstance(key, str) for key in info))
