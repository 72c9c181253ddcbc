"""RFC 6455 5.3 masking: the C extension, the pure-Python version (each of its
branches) and an independent naive reference agree on every input, and bad
arguments raise TypeError/ValueError.

The C tests are skipped when ``syncaerys._speedups`` was not built.
"""

from __future__ import annotations

import functools
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from syncaerys.protocol import mask as masking
from syncaerys.protocol import parser
from syncaerys.protocol.frames import OP_BINARY
from syncaerys.protocol.parser import FrameParser

c_apply_mask: Callable[[Any, Any], bytes] | None
try:
    from syncaerys._speedups import apply_mask as c_apply_mask
except ImportError:
    c_apply_mask = None

requires_c = pytest.mark.skipif(c_apply_mask is None, reason="the C extension syncaerys._speedups is not built")

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def reference(data: bytes, mask: bytes) -> bytes:
    """RFC 6455 5.3, written independently of syncaerys."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def int_branch(data: Any, mask: Any) -> bytes:
    return masking._mask_int(data, bytes(mask), memoryview(data).nbytes)


def translate_branch(data: Any, mask: Any) -> bytes:
    return masking._mask_translate(data, bytes(mask))


def c_or_skip(data: Any, mask: Any) -> bytes:
    assert c_apply_mask is not None
    return c_apply_mask(data, mask)


# Every implementation, for results. The branches are called on every size,
# not only on the sizes apply_mask_python gives them.
IMPLEMENTATIONS = [
    pytest.param(masking.apply_mask, id="apply_mask"),
    pytest.param(masking.apply_mask_python, id="python"),
    pytest.param(int_branch, id="python-int-branch"),
    pytest.param(translate_branch, id="python-translate-branch"),
    pytest.param(c_or_skip, id="c", marks=requires_c),
]
# The public functions, for argument checking.
PUBLIC = [
    pytest.param(masking.apply_mask, id="apply_mask"),
    pytest.param(masking.apply_mask_python, id="python"),
    pytest.param(c_or_skip, id="c", marks=requires_c),
]

KINDS = ["bytes", "bytearray", "memoryview", "offset-view", "strided-view", "cast-view", "2d-view"]


def as_kind(kind: str, data: bytes, offset: int) -> Any:
    """``data`` as another bytes-like object with the same content."""
    n = len(data)
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    if kind == "offset-view":
        # starts ``offset`` bytes into its buffer: any alignment
        return memoryview(bytes(offset) + data + b"tail")[offset : offset + n]
    if kind == "strided-view":
        # every other byte: not contiguous
        raw = bytearray(b"\xee" * (offset + 2 * n))
        raw[offset::2] = data
        view = memoryview(raw)[offset::2]
        assert n < 2 or not view.contiguous
        return view
    if kind == "cast-view":
        # items of 2 bytes: len() is not the byte count
        return memoryview(data).cast("H") if n % 2 == 0 else memoryview(data)
    if kind == "2d-view":
        return memoryview(data).cast("B", [n // 4, 4]) if n % 4 == 0 and n else memoryview(data)
    raise AssertionError(kind)


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


sizes = st.one_of(st.integers(0, 80), st.integers(0, 4096), st.integers(0, 72 * 1024))
masks = st.binary(min_size=4, max_size=4)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@PROPERTY
@given(
    size=sizes,
    seed=st.integers(0, 2**32 - 1),
    key=masks,
    kind=st.sampled_from(KINDS),
    mask_kind=st.sampled_from(["bytes", "bytearray", "memoryview", "offset-view"]),
    offset=st.integers(0, 15),
)
def test_agrees_with_the_reference(
    implementation: Callable[[Any, Any], bytes],
    size: int,
    seed: int,
    key: bytes,
    kind: str,
    mask_kind: str,
    offset: int,
) -> None:
    data = random_bytes(size, seed)
    result = implementation(as_kind(kind, data, offset), as_kind(mask_kind, key, offset))
    assert type(result) is bytes
    assert result == reference(data, key)


# Sizes at the edges of the code paths: the C word loops (8, 32 bytes), the
# pure-Python switch and the parser's switch to a memoryview (64 KiB).
EDGE_SIZES = sorted(
    {*range(0, 70), *(masking.TRANSLATE_THRESHOLD + d for d in range(-5, 6)), *(65536 + d for d in range(-5, 6))}
)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_edge_sizes_at_every_alignment(implementation: Callable[[Any, Any], bytes]) -> None:
    key = b"\x81\x42\x00\xff"
    source = random_bytes(65536 + 32, 1)
    for size in EDGE_SIZES:
        expected = reference(source[:size], key)
        for offset in range(9):
            data = memoryview(source)[:size] if offset == 0 else as_kind("offset-view", source[:size], offset)
            assert implementation(data, key) == expected, (size, offset)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("kind", ["bytes", "offset-view", "strided-view"])
def test_big_payloads(implementation: Callable[[Any, Any], bytes], kind: str) -> None:
    # around 1 MiB, where the C version releases the GIL
    for size in ((1 << 20) - 1, 1 << 20, (1 << 20) + 3, 3 * (1 << 20) // 2 + 1):
        data, expected = big_payload(size)
        assert implementation(as_kind(kind, data, 5), BIG_KEY) == expected


BIG_KEY = b"\x9a\x1b\xc3\x7e"


@functools.cache
def big_payload(size: int) -> tuple[bytes, bytes]:
    """A payload of ``size`` random bytes and its reference masking, made once (the reference is slow)."""
    data = random_bytes(size, size)
    return data, reference(data, BIG_KEY)


def test_masking_twice_gives_the_data_back() -> None:
    data = random_bytes(10_000, 2)
    key = b"\x01\x02\x03\x04"
    assert masking.apply_mask(masking.apply_mask(data, key), key) == data


BAD_MASKS = [b"", b"abc", b"abcde", bytearray(b"abcdefgh"), memoryview(b"abcdef")[:3]]
NOT_BUFFERS = ["abcd", 1234, 4, None, [1, 2, 3, 4], 4.0, object()]


@pytest.mark.parametrize("implementation", PUBLIC)
@pytest.mark.parametrize("bad", BAD_MASKS, ids=repr)
def test_a_mask_not_4_bytes_long_is_a_value_error(implementation: Callable[[Any, Any], bytes], bad: Any) -> None:
    with pytest.raises(ValueError, match="mask must be 4 bytes"):
        implementation(b"payload", bad)


@pytest.mark.parametrize("implementation", PUBLIC)
@pytest.mark.parametrize("bad", NOT_BUFFERS, ids=repr)
def test_a_mask_that_is_not_a_buffer_is_a_type_error(implementation: Callable[[Any, Any], bytes], bad: Any) -> None:
    with pytest.raises(TypeError):
        implementation(b"payload", bad)


@pytest.mark.parametrize("implementation", PUBLIC)
@pytest.mark.parametrize("bad", NOT_BUFFERS, ids=repr)
def test_data_that_is_not_a_buffer_is_a_type_error(implementation: Callable[[Any, Any], bytes], bad: Any) -> None:
    with pytest.raises(TypeError):
        implementation(bad, b"abcd")


@pytest.mark.parametrize("implementation", [masking.apply_mask_python, c_apply_mask], ids=["python", "c"])
def test_wrong_calls_are_type_errors(implementation: Callable[..., bytes] | None) -> None:
    if implementation is None:
        pytest.skip("the C extension syncaerys._speedups is not built")
    with pytest.raises(TypeError):
        implementation(b"data")
    with pytest.raises(TypeError):
        implementation(b"data", b"abcd", b"more")
    with pytest.raises(TypeError):
        implementation(data=b"data", mask=b"abcd")


anything = st.one_of(
    st.binary(max_size=8),
    st.binary(max_size=8).map(bytearray),
    st.binary(max_size=8).map(lambda data: memoryview(data)),
    st.text(max_size=8),
    st.integers(),
    st.none(),
    st.lists(st.integers(0, 255), max_size=5),
    st.floats(),
)


@requires_c
@PROPERTY
@given(data=anything, key=anything)
def test_c_and_python_agree_on_any_arguments(data: Any, key: Any) -> None:
    assert c_apply_mask is not None

    def outcome(func: Callable[[Any, Any], bytes]) -> object:
        try:
            return func(data, key)
        except (TypeError, ValueError) as exc:
            return type(exc)

    assert outcome(c_apply_mask) == outcome(masking.apply_mask_python)


@requires_c
def test_c_is_correct_from_several_threads_at_once() -> None:
    # 1 MiB inputs: the GIL is released while they are masked.
    assert c_apply_mask is not None
    data = random_bytes(1 << 20, 3)
    keys = [bytes((i, 255 - i, i * 7 % 256, 0x5A)) for i in range(4)]
    expected = {key: reference(data, key) for key in keys}
    failures: list[bytes] = []

    def work(key: bytes) -> None:
        for _ in range(20):
            if c_apply_mask(data, key) != expected[key]:
                failures.append(key)

    threads = [threading.Thread(target=work, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


def test_apply_mask_is_the_c_version_when_built() -> None:
    if os.environ.get("SYNCAERYS_NO_EXTENSIONS"):
        pytest.skip("SYNCAERYS_NO_EXTENSIONS is set")
    assert masking.SPEEDUPS is (c_apply_mask is not None)
    assert masking.apply_mask is (c_apply_mask or masking.apply_mask_python)
    assert vars(parser)["apply_mask"] is masking.apply_mask  # what the parser unmasks with


def test_the_environment_variable_forces_pure_python() -> None:
    code = (
        "import syncaerys.protocol.mask as m, syncaerys.protocol.parser as p, syncaerys.protocol.framing as f; "
        "print(m.SPEEDUPS, m.apply_mask is m.apply_mask_python, p.apply_mask is m.apply_mask_python, "
        "m.unmask_in_place is m.unmask_in_place_python, f.SPEEDUPS, p.parse_frame is f.parse_frame_python)"
    )
    env = {**os.environ, "SYNCAERYS_NO_EXTENSIONS": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True", "False", "True"]


# -- the parser, which masks large payloads from a view of its buffer


def client_frame(payload: bytes, key: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | OP_BINARY, 0x80 | length))
    elif length < 65536:
        header = bytes((0x80 | OP_BINARY, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | OP_BINARY, 0x80 | 127)) + length.to_bytes(8, "big")
    return header + key + reference(payload, key)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 65537, (1 << 20) + 3])
def test_the_parser_unmasks_payloads_of_every_size(size: int) -> None:
    key = b"\x9a\x00\x31\xc4"
    payloads = [random_bytes(size, i) for i in range(2)]
    stream = b"".join(client_frame(payload, key) for payload in payloads)
    parser = FrameParser()
    split = len(stream) // 3
    parser.feed(stream[:split])
    parser.feed(stream[split:])
    frames = [parser.next_frame(), parser.next_frame()]
    assert parser.next_frame() is None
    assert [frame.data if frame else None for frame in frames] == payloads
    assert all(type(frame.data) is bytes for frame in frames if frame)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 31, 1000, (1 << 20) + 1])
def test_unmask_in_place_c_and_python_agree_with_the_reference(size: int) -> None:
    key = b"\x9a\x00\x31\xc4"
    data = random_bytes(size, 7)
    versions = [masking.unmask_in_place_python]
    if masking.SPEEDUPS:
        versions.append(masking.unmask_in_place)
    for unmask in versions:
        buffer = bytearray(data)
        unmask(buffer, key)
        assert bytes(buffer) == reference(data, key)
        view = memoryview(bytearray(b"--" + data))[2:]
        unmask(view, key)
        assert bytes(view) == reference(data, key)
        with pytest.raises(TypeError):
            unmask(data, key)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="4 bytes"):
            unmask(bytearray(data), b"abc")
