"""Optional C implementations of hot paths (see syncaerys.protocol.mask)."""

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview, /) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask`` repeated (RFC 6455 5.3)."""
