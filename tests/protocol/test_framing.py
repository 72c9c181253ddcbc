"""parse_frame: the C version and the pure-Python one give the same result on every input.

Arbitrary bytes, every flag combination and limits near the lengths, at any
position in the buffer: the same wanted size, the same frame (``str`` for a
whole uncompressed text frame, ``bytes`` otherwise) or the same violation.
The parser's own tests (test_parser.py) check what the results mean against
an independent encoder and wsproto; this pins the two implementations together.
The C tests are skipped when ``syncaerys._speedups`` is not built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from syncaerys.protocol.framing import RSV1_ALLOWED
from syncaerys.protocol.framing import TEXT_ONLY
from syncaerys.protocol.framing import parse_frame_python
from tests.utils import client_frame

c_parse_frame: Callable[..., Any] | None
try:
    from syncaerys._speedups import parse_frame as c_parse_frame
except ImportError:
    c_parse_frame = None

pytestmark = pytest.mark.skipif(c_parse_frame is None, reason="the C extension syncaerys._speedups is not built")

PROPERTY = settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

FLAGS = st.builds(
    lambda opcode, extra: opcode | extra,
    st.sampled_from([0, 1, 2]),
    st.sampled_from([0, RSV1_ALLOWED, TEXT_ONLY, RSV1_ALLOWED | TEXT_ONLY]),
)
LIMITS = st.sampled_from([0, 1, 125, 126, 65535, 65536, 1 << 20, 1 << 63])


def both(buffer: Any, pos: int, flags: int, limit: int) -> Any:
    assert c_parse_frame is not None
    result = c_parse_frame(buffer, pos, flags, limit)
    assert result == parse_frame_python(buffer, pos, flags, limit)
    if isinstance(result, tuple) and len(result) == 3:
        assert type(result[1]) is type(parse_frame_python(buffer, pos, flags, limit)[1])  # type: ignore[index]
    return result


@PROPERTY
@given(st.binary(max_size=300), st.integers(0, 20), FLAGS, LIMITS)
def test_arbitrary_bytes(data: bytes, pos: int, flags: int, limit: int) -> None:
    both(data, min(pos, len(data)), flags, limit)


FRAMES = st.builds(
    client_frame,
    st.sampled_from([0, 1, 2, 3, 8, 9, 10, 11]),
    st.one_of(st.binary(max_size=300), st.text(max_size=100).map(str.encode)),
    fin=st.booleans(),
    rsv=st.sampled_from([0, 1, 2, 4, 5]),
    masked=st.booleans(),
)


@PROPERTY
@given(st.binary(max_size=20), FRAMES, st.integers(0, 400), FLAGS, LIMITS)
def test_frames_at_any_position_and_cut_anywhere(prefix: bytes, frame: bytes, cut: int, flags: int, limit: int) -> None:
    buffer = prefix + frame[:cut]
    result = both(buffer, len(prefix), flags, limit)
    if isinstance(result, int):
        assert result > cut
    both(bytearray(buffer), len(prefix), flags, limit)
    both(memoryview(buffer), len(prefix), flags, limit)


@pytest.mark.parametrize("length", [125, 126, 1024, 1025, 65535, 65536, (1 << 20) + 5])
@pytest.mark.parametrize("opcode", [1, 2])
def test_long_payloads(opcode: int, length: int) -> None:
    text = "é" * (length // 2) + "a" * (length % 2)
    payload = text.encode() if opcode == 1 else (bytes(range(256)) * (length // 256 + 1))[:length]
    frame = client_frame(opcode, payload, key=b"\x01\x80\x7f\xfe")
    first, data, end = both(frame, 0, 0, 1 << 63)
    assert (first, end) == (0x80 | opcode, len(frame))
    assert data == (text if opcode == 1 else payload)
    # One byte less: the last character is cut, 1007 from both.
    if opcode == 1:
        assert both(client_frame(opcode, payload[:-1]), 0, 0, 1 << 63)[0] in (0x81, 1007)


def test_a_position_outside_the_buffer_is_refused() -> None:
    assert c_parse_frame is not None
    for parse in (c_parse_frame, parse_frame_python):
        with pytest.raises(ValueError, match="outside the buffer"):
            parse(b"ab", 3, 0, 0)
        with pytest.raises(ValueError, match="outside the buffer"):
            parse(b"ab", -1, 0, 0)
