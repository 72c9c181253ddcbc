"""The backplane's wire format: decode() raises only WireError, and encode/decode round-trips."""

from __future__ import annotations

import _common
import atheris

with atheris.instrument_imports(include=["syncaerys"]):
    from syncaerys.backplane import wire

KINDS = sorted(wire.KINDS)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        try:
            wire.decode(fdp.ConsumeBytes(fdp.remaining_bytes()))
        except wire.WireError:
            pass
        return
    ids = tuple(fdp.ConsumeIntInRange(0, (1 << 52) - 1) for _ in range(fdp.ConsumeIntInRange(0, 3)))
    op = wire.Operation(
        KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)],
        origin=fdp.ConsumeIntInRange(0, wire.MAX_NODES - 1),
        binary=fdp.ConsumeBool(),
        payload=fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200)),
        client_ids=ids,
        except_ids=ids[:1],
        room=fdp.ConsumeUnicodeNoSurrogates(20) if fdp.ConsumeBool() else None,
    )
    encoded = wire.encode(op)
    decoded = wire.decode(encoded)
    if wire.encode(decoded) != encoded:
        raise AssertionError(f"{op!r} did not survive the wire: {decoded!r}")
    # Any truncation is refused, never misread.
    cut = fdp.ConsumeIntInRange(0, max(0, len(encoded) - 1))
    try:
        wire.decode(encoded[:cut])
    except wire.WireError:
        pass
    else:
        if cut < len(encoded):
            # A shorter message may still be whole if the payload was cut: it must then be a prefix.
            partial = wire.decode(encoded[:cut])
            if not op.payload.startswith(partial.payload) or partial.kind != op.kind:
                raise AssertionError(f"a truncated message decoded as {partial!r}")


if __name__ == "__main__":
    _common.main(test_one_input)
