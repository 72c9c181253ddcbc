"""One client frame at a position in a buffer: header checked, payload unmasked (sans-I/O).

:func:`parse_frame` is the C version from ``syncaerys._speedups`` when that
extension was built (and ``SYNCAERYS_NO_EXTENSIONS`` is not set, see
:mod:`syncaerys.protocol.mask`), otherwise :func:`parse_frame_python`. Both
keep this contract, and the tests run both on the same inputs.

``parse_frame(buffer, pos, flags, limit)`` looks at the frame starting at
``buffer[pos]`` and returns one of:

* an ``int``: the frame is not whole; the number of bytes from ``pos`` needed
  before looking again (the header's size while the header, mask key
  included, is not whole; the whole frame's after). The header rules are
  checked as soon as the length is known, before the payload is there.
* ``(first, data, end)``: a whole frame. ``first`` is its first byte (FIN,
  RSV1 and the opcode), ``data`` its unmasked payload and ``end`` the position
  after it. ``data`` is ``str`` for a text frame with FIN set and RSV1 clear
  (a whole uncompressed text message: checked as UTF-8 and decoded), ``bytes``
  for every other frame.
* ``(code, reason)``: the frame breaks a rule of RFC 6455; close with that
  code and reason.

``flags`` is the opcode of the fragmented message in progress (0 when none)
ORed with :data:`RSV1_ALLOWED` (permessage-deflate was negotiated) and
:data:`TEXT_ONLY` (binary messages are refused with 1003). ``limit`` is the
largest payload the frame may have (1009 above): the frame size limit, or
less when the message it continues is near the message size limit.

Pure functions; thread-safe; never block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from .frames import OP_BINARY
from .frames import OP_CLOSE
from .frames import OP_CONT
from .frames import OP_TEXT
from .mask import Buffer
from .mask import apply_mask
from .mask import load_speedup

__all__ = [
    "MESSAGE_OPCODE",
    "RSV1_ALLOWED",
    "SPEEDUPS",
    "TEXT_ONLY",
    "Parsed",
    "parse_frame",
    "parse_frame_python",
]

#: The bits of ``flags`` that hold the opcode of the fragmented message in progress.
MESSAGE_OPCODE = 0x0F
#: In ``flags``: permessage-deflate was negotiated (RSV1 may mark a data message's first frame).
RSV1_ALLOWED = 0x10
#: In ``flags``: binary messages are refused (1003).
TEXT_ONLY = 0x20

#: What :func:`parse_frame` returns (see the module's docstring).
Parsed: TypeAlias = "int | tuple[int, str | bytes, int] | tuple[int, str]"


def parse_frame_python(buffer: Buffer, pos: int, flags: int, limit: int, /) -> Parsed:  # noqa: C901, PLR0911, PLR0912
    """The pure-Python :func:`parse_frame` (the contract is in the module's docstring)."""
    if not 0 <= pos <= len(buffer):
        raise ValueError(f"pos {pos} is outside the buffer of {len(buffer)} bytes")
    avail = len(buffer) - pos
    if avail < 2:
        return 2
    first = buffer[pos]
    second = buffer[pos + 1]
    length = second & 0x7F
    header = 6
    if length == 126:
        header = 8
        if avail < 4:
            return 4
        length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
    elif length == 127:
        header = 14
        if avail < 10:
            return 10
        length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
    opcode = first & 0x0F
    fin = first & 0x80
    # RFC 6455 5.2: "MUST be 0 unless an extension is negotiated"; RFC 7692
    # 6: RSV1 on the first frame of a data message marks it compressed.
    if first & 0x70 and (first & 0x30 or not flags & RSV1_ALLOWED or opcode not in (OP_TEXT, OP_BINARY)):
        return 1002, "RSV must be 0 if no extensions are negotiated"
    if opcode > OP_BINARY and opcode < OP_CLOSE:
        return 1002, "Use of reserved non-control frame opcode"
    if opcode > 0xA:
        return 1002, "Use of reserved control frame opcode"
    if length >> 63:
        return 1002, "Most significant bit of 64-bit length field set"
    # RFC 6455 5.1: "The server MUST close the connection upon receiving a
    # frame that is not masked."
    if not second & 0x80:
        return 1002, "Payload mask required"
    if opcode >= OP_CLOSE:
        # RFC 6455 5.5: "All control frames MUST have a payload length of
        # 125 bytes or less and MUST NOT be fragmented."
        if not fin:
            return 1002, "Illegal control frame fragmentation"
        if length > 125:
            return 1002, "Control frame payload must be of maximum 125 bytes or less"
    else:
        message_opcode = flags & MESSAGE_OPCODE
        if opcode == OP_CONT:
            if not message_opcode:
                return 1002, "Illegal CONTINUATION opcode; initial message payload frame must be TEXT or BINARY"
        elif message_opcode:
            return (
                1002,
                "Illegal data type opcode after unfinished previous data type frame; opcode MUST be CONTINUATION",
            )
        if length > limit:
            return 1009, "Received payload exceeds maximum allowable size"
        if flags & TEXT_ONLY and opcode == OP_BINARY:
            return 1003, "BINARY opcodes (0x02) not accepted"
    total = header + length
    if avail < total:
        # The header first, so that the caller sees the mask key of a frame arriving in pieces.
        return header if avail < header else total
    start = pos + header
    end = pos + total
    # For a small payload, slicing is cheaper than making a memoryview; a large one is not copied first.
    data = memoryview(buffer)[start:end] if length >= 65536 else buffer[start:end]
    payload = apply_mask(data, buffer[start - 4 : start])
    if opcode == OP_TEXT and fin and not first & 0x40:
        try:
            return first, payload.decode("utf-8"), end
        except UnicodeDecodeError:
            return 1007, "Invalid TEXT data; UTF-8 required"
    return first, payload, end


_c_parse_frame: Callable[[Buffer, int, int, int], Parsed] | None = load_speedup("parse_frame")

#: Whether :func:`parse_frame` is the C version.
SPEEDUPS = _c_parse_frame is not None

parse_frame: Callable[[Buffer, int, int, int], Parsed] = _c_parse_frame or parse_frame_python
"""Parse the client frame at ``buffer[pos:]``: the C version when available, else
:func:`parse_frame_python` (the contract is in the module's docstring). Pure; thread-safe; never blocks."""
