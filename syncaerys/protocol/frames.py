"""RFC 6455 frame constants, close-code rules and the frame encoder (sans-I/O)."""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import TypeAlias

__all__ = [
    "OP_CONT",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "CloseCode",
    "encode_frame",
    "encode_message",
    "encode_frames",
    "OutFrame",
    "Encoded",
    "SENDMSG_FROM",
    "frame_length",
    "encode_close",
    "is_valid_peer_close_code",
    "validate_close_arguments",
]

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_FIN = 0x80
_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack

#: One server frame as the send queue writes it: the whole frame in one
#: ``bytes``, or its header and its payload apart, for the socket to gather
#: with one ``sendmsg`` (the payload, a ``memoryview`` of the message for a
#: fragment, is never copied).
OutFrame: TypeAlias = bytes | tuple[bytes, bytes | memoryview]

#: A message encoded for one client: the ``bytes`` of its one frame (the
#: commonest message: no list to build), its frames, or, compressed with the
#: client's own context, a function that builds them in queue order.
Encoded: TypeAlias = bytes | list[OutFrame] | Callable[[], list[OutFrame]]

#: Payloads from this size on are kept apart from their header (an
#: :data:`OutFrame` pair); smaller frames are joined, which costs less than
#: ``sendmsg``'s iovec below it (``benchmarks/sendmsg_bench.py``, per frame on
#: loopback: sendmsg 1.16x the join at 1 KiB, 1.16x at 8 KiB, even at 16 KiB
#: and 64 KiB, 0.85x at 256 KiB, 0.81x at 1 MiB). A fragment of a large
#: message saves two copies, its slice and the join.
SENDMSG_FROM = 16384


class CloseCode(enum.IntEnum):
    """Close codes by their RFC 6455 / IANA registry names, with Aerys's names as aliases.

    An ``int`` enum: ``endpoint.close(client_id, CloseCode.GOING_AWAY)`` and
    ``code == CloseCode.NORMAL_CLOSURE`` work, and ``on_close`` receives plain
    ints (applications may use 3000-4999, which have no name here).
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015

    # Aerys's Websocket\Code names, for apps ported from it.
    NORMAL_CLOSE = 1000
    UNACCEPTABLE_TYPE = 1003
    NONE = 1005
    ABNORMAL_CLOSE = 1006
    INCONSISTENT_FRAME_DATA_TYPE = 1007
    MESSAGE_TOO_LARGE = 1009
    EXPECTED_EXTENSION_MISSING = 1010
    UNEXPECTED_SERVER_ERROR = 1011
    TLS_HANDSHAKE_FAILURE = 1015


# RFC 6455 7.4.1 and the IANA registry: codes an endpoint may put on the wire.
# 1004 is reserved, 1005/1006/1015 "MUST NOT be set as a status code in a Close
# control frame by an endpoint".
_SENDABLE_BELOW_3000 = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def is_valid_peer_close_code(code: int) -> bool:
    """Whether a close code received from the peer is acceptable (else 1002). Pure; thread-safe; never blocks."""
    return int(code) in _SENDABLE_BELOW_3000 or 3000 <= code <= 4999


def validate_close_arguments(code: int, reason: str) -> bytes:
    """Check a close code and reason given by the application.

    Returns the UTF-8 encoded reason; raises :class:`ValueError` when the code
    may not be sent or the reason exceeds the 123 bytes a control frame allows.
    Pure; thread-safe; never blocks.
    """
    if not isinstance(code, int) or not is_valid_peer_close_code(code):
        raise ValueError(f"close code {code!r} may not be sent (use 1000, 1001-1003, 1007-1014 or 3000-4999)")
    encoded = reason.encode("utf-8")
    if len(encoded) > 123:
        raise ValueError(f"close reason is {len(encoded)} bytes in UTF-8; at most 123 are allowed")
    return encoded


def encode_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """One unmasked server frame: header and payload in a single ``bytes``.

    ``rsv1`` marks the first frame of a compressed message (RFC 7692).
    Pure; thread-safe; never blocks.
    """
    length = len(payload)
    first = opcode | _FIN if fin else opcode
    if rsv1:
        first |= 0x40
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return _pack_short(first, 126, length) + payload
    return _pack_long(first, 127, length) + payload


def encode_message(opcode: int, payload: bytes, auto_frame_size: int | None, compressed: bool = False) -> list[bytes]:
    """A whole message as frames, split in equal fragments past ``auto_frame_size``.

    As Aerys does: ``slices = ceil(len / auto_frame_size)`` fragments of
    ``ceil(len / slices)`` bytes, so 131,046 bytes with the default 65,527 give
    two frames of 65,523. Pure; thread-safe; never blocks.
    """
    length = len(payload)
    if length < 126 and not compressed and (auto_frame_size is None or length <= auto_frame_size):
        # The common small message, without the call (a per-message cost on the echo path).
        return [bytes((opcode | _FIN, length)) + payload]
    if auto_frame_size is None or length <= auto_frame_size:
        return [encode_frame(opcode, payload, True, compressed)]
    slices = -(-length // auto_frame_size)
    size = -(-length // slices)
    view = memoryview(payload)
    frames = []
    for start in range(0, length, size):
        end = start + size
        first = start == 0
        frames.append(
            encode_frame(opcode if first else OP_CONT, bytes(view[start:end]), end >= length, compressed and first)
        )
    return frames


def _header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _pack_short(first, 126, length)
    return _pack_long(first, 127, length)


def frame_length(frame: OutFrame) -> int:
    """The bytes of one :data:`OutFrame` on the wire. Pure; thread-safe; never blocks."""
    if isinstance(frame, bytes):
        return len(frame)
    return len(frame[0]) + len(frame[1])


def encode_frames(opcode: int, payload: bytes, auto_frame_size: int | None, compressed: bool = False) -> list[OutFrame]:
    """:func:`encode_message`, each frame as an :data:`OutFrame`: payloads of :data:`SENDMSG_FROM` bytes or more apart.

    The same frames on the wire, split the same way; a fragment's payload is a
    ``memoryview`` of ``payload``, so nothing of a large message is copied.
    Pure; thread-safe; never blocks.
    """
    length = len(payload)
    frames: list[OutFrame] = []
    if length < SENDMSG_FROM:
        frames.extend(encode_message(opcode, payload, auto_frame_size, compressed))
        return frames
    if auto_frame_size is None or length <= auto_frame_size:
        first = opcode | _FIN | 0x40 if compressed else opcode | _FIN
        frames.append((_header(first, length), payload))
        return frames
    slices = -(-length // auto_frame_size)
    size = -(-length // slices)
    view = memoryview(payload)
    for start in range(0, length, size):
        end = min(start + size, length)
        first = opcode if start == 0 else OP_CONT
        if end >= length:
            first |= _FIN
        if compressed and start == 0:
            first |= 0x40
        piece = view[start:end]
        if end - start < SENDMSG_FROM:
            frames.append(_header(first, end - start) + piece)
        else:
            frames.append((_header(first, end - start), piece))
    return frames


def encode_close(code: int | None, reason: bytes = b"") -> bytes:
    """A close frame; ``code`` None or 1005 gives an empty payload. Pure; thread-safe; never blocks."""
    if code is None or code == CloseCode.NONE:
        return encode_frame(OP_CLOSE, b"")
    return encode_frame(OP_CLOSE, code.to_bytes(2, "big") + reason)
