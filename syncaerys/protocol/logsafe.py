"""Values from the network made safe for a log line (sans-I/O): :func:`printable`."""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators:
# whatever a log file or a terminal may take for a new line or an escape sequence.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(value: object) -> str:
    """``value`` as text with control characters escaped (``\\n``, ``\\x1b``, ``\\u2028``), for a log line.

    A request's path, headers or close reason come from the client: written
    as they are, ``GET /chat%0a<fake line>`` forges a complete log line.
    Pure; thread-safe; never blocks.
    """
    text = str(value)
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    escaped = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if escaped is not None:
        return escaped
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
