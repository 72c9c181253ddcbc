"""Optional C implementations of hot paths (see syncaerys.protocol.mask and syncaerys.protocol.framing).

Each has a pure-Python twin with the same contract, used when the extension is
not built or ``SYNCAERYS_NO_EXTENSIONS`` is set; the tests run both.
"""

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview, /) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask`` repeated (RFC 6455 5.3).

    Thread-safe; never blocks (the GIL is released while a large input is masked).
    """

def unmask_in_place(buffer: bytearray | memoryview, mask: bytes | bytearray | memoryview, /) -> None:
    """XOR the writable contiguous ``buffer`` with the 4-byte ``mask`` repeated, in place (RFC 6455 5.3).

    Raises TypeError for a read-only buffer, ValueError when ``mask`` is not 4
    bytes long. Not thread-safe on the same buffer; never blocks (the GIL is
    released while a large buffer is unmasked).
    """

def parse_frame(
    buffer: bytes | bytearray | memoryview, pos: int, flags: int, limit: int, /
) -> int | tuple[int, str | bytes, int] | tuple[int, str]:
    """Parse the client frame at ``buffer[pos:]``: its header checked, its payload unmasked.

    Returns the bytes from ``pos`` still needed (an ``int``), ``(first, data,
    end)`` for a whole frame (``data`` a ``str`` for a FIN text frame without
    RSV1, checked as UTF-8; ``bytes`` otherwise), or ``(code, reason)`` for a
    violation of RFC 6455. ``flags`` and ``limit`` are described, with the
    whole contract, in :mod:`syncaerys.protocol.framing`, whose
    ``parse_frame_python`` is the pure-Python version. Raises ValueError when
    ``pos`` is outside the buffer. Thread-safe; never blocks.
    """
