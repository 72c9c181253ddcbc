"""Optional C implementations of hot paths (see syncaerys.protocol.mask and syncaerys.transport)."""

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview, /) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask`` repeated (RFC 6455 5.3)."""

def send_nowait(fd: int, data: bytes | bytearray | memoryview, /) -> int:
    """Write what socket ``fd`` takes of ``data`` now; 0 when it is full. Keeps the GIL for small writes."""

def recv_nowait_into(fd: int, buffer: bytearray | memoryview, /) -> int:
    """Read what socket ``fd`` has now into ``buffer``; 0 at EOF, -1 when nothing is there. Keeps the GIL."""
