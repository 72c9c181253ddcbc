"""Micro-benchmark of RFC 6455 masking: µs per call, by payload size.

Compares the former pure-Python method (one big-int XOR), the current
pure-Python :func:`~syncaerys.protocol.mask.apply_mask_python` (and each of its
two branches) and the C extension, when built. Run::

    python benchmarks/mask_bench.py [--quick]

Each figure is the best of several repeats, to be robust against a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import timeit
from collections.abc import Callable

from syncaerys.protocol import mask as masking

SIZES = [32, 1024, 4096, 65536, 1 << 20]
CROSSOVER_SIZES = [64, 128, 256, 384, 512, 768, 1024, 2048]


def old_int(payload: bytes, mask: bytes) -> bytes:
    """The method syncaerys used before protocol/mask.py (parser.unmask)."""
    length = len(payload)
    if not length:
        return b""
    key = (mask * ((length >> 2) + 1))[:length]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")


def c_version() -> Callable[[bytes, bytes], bytes] | None:
    try:
        from syncaerys._speedups import apply_mask
    except ImportError:
        return None
    return apply_mask


def per_call(func: Callable[[bytes, bytes], bytes], data: bytes, mask: bytes, repeat: int) -> float:
    """Best time of one call in µs."""
    number = max(10, int(4e6 / (len(data) + 200)))
    return min(timeit.repeat(lambda: func(data, mask), number=number, repeat=repeat)) / number * 1e6


def size_name(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB" if size >= 1024 else f"{size} B"


def table(methods: dict[str, Callable[[bytes, bytes], bytes]], sizes: list[int], repeat: int) -> None:
    mask = os.urandom(4)
    print(f"| size | {' | '.join(methods)} |")
    print(f"|---:|{'---:|' * len(methods)}")
    for size in sizes:
        data = os.urandom(size)
        expected = old_int(data, mask)
        cells = []
        for func in methods.values():
            assert func(data, mask) == expected
            cells.append(f"{per_call(func, data, mask, repeat):.2f}")
        print(f"| {size_name(size)} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    c_mask = c_version()
    print(f"µs per call (best of {repeat}); C extension {'built' if c_mask else 'NOT built'}\n")
    methods: dict[str, Callable[[bytes, bytes], bytes]] = {
        "old int XOR": old_int,
        "pure Python (apply_mask_python)": masking.apply_mask_python,
    }
    if c_mask is not None:
        methods["C (_speedups.apply_mask)"] = c_mask
    table(methods, SIZES, repeat)
    print(f"\nPure-Python branches (apply_mask_python switches at {masking.TRANSLATE_THRESHOLD} B):\n")
    branches: dict[str, Callable[[bytes, bytes], bytes]] = {
        "int XOR branch": lambda data, mask: masking._mask_int(data, mask, len(data)),
        "translate branch": masking._mask_translate,
    }
    table(branches, CROSSOVER_SIZES, repeat)


if __name__ == "__main__":
    main()
