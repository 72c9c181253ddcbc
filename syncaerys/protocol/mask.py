"""RFC 6455 5.3 masking: XOR a payload with a 4-byte key repeated (sans-I/O).

:func:`apply_mask` is the C version from ``syncaerys._speedups`` when that
extension was built, otherwise :func:`apply_mask_python`. Setting the
environment variable ``SYNCAERYS_NO_EXTENSIONS`` to a non-empty value forces
the pure-Python version (and skips building the extension at install).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from typing import TypeAlias

__all__ = [
    "Buffer",
    "SPEEDUPS",
    "TRANSLATE_THRESHOLD",
    "apply_mask",
    "apply_mask_python",
    "load_speedup",
    "unmask_in_place",
    "unmask_in_place_python",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

# Payloads of at least this many bytes are masked with bytes.translate, shorter
# ones with one big-int XOR; measured crossover ~400 B (benchmarks/mask_bench.py).
TRANSLATE_THRESHOLD = 512

_IDENTITY = int.from_bytes(bytes(range(256)), "little")
_ONES = int.from_bytes(b"\x01" * 256, "little")
# _TABLES[m] maps every byte b to b ^ m.
_TABLES = [(_IDENTITY ^ _ONES * m).to_bytes(256, "little") for m in range(256)]


def _mask_int(data: Buffer, mask: bytes, length: int) -> bytes:
    # int.from_bytes/to_bytes are linear but have a large constant; the
    # fastest pure-Python way for short payloads.
    if not length:
        return b""
    key = (mask * ((length >> 2) + 1))[:length]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")


def _mask_translate(data: Buffer, mask: bytes) -> bytes:
    # Every 4th byte has the same key byte, so each of the 4 strided slices is
    # one bytes.translate. Copying first and working in place beat building
    # the result from slices of the input, and memoryview slice assignment.
    out = bytearray(data)
    tables = _TABLES
    out[0::4] = out[0::4].translate(tables[mask[0]])
    out[1::4] = out[1::4].translate(tables[mask[1]])
    out[2::4] = out[2::4].translate(tables[mask[2]])
    out[3::4] = out[3::4].translate(tables[mask[3]])
    return bytes(out)


def apply_mask_python(data: Buffer, mask: Buffer, /) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask`` repeated (RFC 6455 5.3).

    Pure Python; ``data`` is any bytes-like object. Raises :class:`TypeError`
    for non-buffers and :class:`ValueError` when ``mask`` is not 4 bytes long.
    Pure function; thread-safe; never blocks.
    """
    if type(mask) is not bytes:
        mask = memoryview(mask).tobytes()
    if len(mask) != 4:
        raise ValueError(f"mask must be 4 bytes long, not {len(mask)}")
    if type(data) is bytes or type(data) is bytearray:
        length = len(data)
    else:
        # memoryview() also rejects non-buffers (bytearray(5) or a list would not).
        data = memoryview(data)
        length = data.nbytes
    if length < TRANSLATE_THRESHOLD:
        return _mask_int(data, mask, length)
    return _mask_translate(data, mask)


def unmask_in_place_python(buffer: bytearray | memoryview, mask: Buffer, /) -> None:
    """XOR the writable ``buffer`` with the 4-byte ``mask`` repeated, in place (RFC 6455 5.3).

    Pure Python. Raises :class:`TypeError` for a read-only buffer and
    :class:`ValueError` when ``mask`` is not 4 bytes long. Not thread-safe on
    the same buffer; never blocks.
    """
    view = memoryview(buffer)
    if view.readonly:
        raise TypeError("unmask_in_place() needs a writable buffer")
    view[:] = apply_mask_python(view, mask)


def load_speedup(name: str) -> Any:
    """The function ``name`` of the C extension, or ``None`` when it is not built, was
    built from an older source that lacks it (an editable install not rebuilt since), or
    ``SYNCAERYS_NO_EXTENSIONS`` is set. Thread-safe; never blocks."""
    if os.environ.get("SYNCAERYS_NO_EXTENSIONS"):
        return None
    try:
        from .. import _speedups
    except ImportError:
        return None
    return getattr(_speedups, name, None)


_c_apply_mask: Callable[[Buffer, Buffer], bytes] | None = load_speedup("apply_mask")

#: Whether :func:`apply_mask` (and :func:`unmask_in_place`) is the C version.
SPEEDUPS = _c_apply_mask is not None

apply_mask: Callable[[Buffer, Buffer], bytes] = _c_apply_mask or apply_mask_python
"""Return ``data`` XORed with the 4-byte ``mask`` repeated (RFC 6455 5.3): the C
version when available, else :func:`apply_mask_python`. Pure; thread-safe; never blocks."""

unmask_in_place: Callable[[bytearray | memoryview, Buffer], None] = (
    load_speedup("unmask_in_place") or unmask_in_place_python
)
"""XOR the writable ``buffer`` with the 4-byte ``mask`` repeated, in place: the C version
when available, else :func:`unmask_in_place_python`. Not thread-safe on the same buffer; never blocks."""
