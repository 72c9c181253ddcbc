"""The backplane's wire format: decode() raises only WireError, and encode/decode round-trips."""

from __future__ import annotations

import _common
import atheris

with atheris.instrument_imports(include=["syncaerys"]):
    from syncaerys.backplane import wire

KINDS = sorted(wire.KINDS)
CODES = [1000, 1001, 1011, 3000, 4000, 4999]
#: How many client ids each kind names, at least and at most (here).
ID_COUNTS = {wire.SEND: (1, 1), wire.INFO: (1, 1), wire.BROADCAST: (0, 0), wire.INFO_REPLY: (0, 0)}


def operation(fdp: atheris.FuzzedDataProvider) -> wire.Operation:
    """A well-formed operation of any kind (what a node or a Publisher publishes)."""
    kind = KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)]
    low, high = ID_COUNTS.get(kind, (1, 3))
    ids = tuple(fdp.ConsumeIntInRange(1, (1 << 52) - 1) for _ in range(fdp.ConsumeIntInRange(low, high)))
    binary = fdp.ConsumeBool()
    size = fdp.ConsumeIntInRange(0, 200)
    payload = fdp.ConsumeBytes(size) if binary else fdp.ConsumeUnicodeNoSurrogates(size).encode("utf-8")
    room = fdp.ConsumeUnicodeNoSurrogates(20) if kind in (wire.JOIN, wire.LEAVE) or fdp.ConsumeBool() else None
    closing = kind == wire.CLOSE
    return wire.Operation(
        kind,
        origin=fdp.ConsumeIntInRange(1 if kind == wire.INFO else 0, wire.MAX_NODES - 1),
        binary=binary,
        payload=payload,
        client_ids=ids,
        except_ids=ids[:1] if kind == wire.BROADCAST else (),
        room=room,
        code=CODES[fdp.ConsumeIntInRange(0, len(CODES) - 1)] if closing else 1000,
        reason=fdp.ConsumeUnicodeNoSurrogates(30)[:30] if closing else "",
        request_id=fdp.ConsumeUnicodeNoSurrogates(16) or "q" if kind in (wire.INFO, wire.INFO_REPLY) else "",
        reply={"info": None if fdp.ConsumeBool() else {"bytes_read": 1}} if kind == wire.INFO_REPLY else None,
    )


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        try:
            wire.decode(fdp.ConsumeBytes(fdp.remaining_bytes()))
        except wire.WireError:
            pass
        return
    op = operation(fdp)
    if len(op.reason.encode("utf-8")) > 123:
        return
    encoded = wire.encode(op)
    decoded = wire.decode(encoded)
    if wire.encode(decoded) != encoded:
        raise AssertionError(f"{op!r} did not survive the wire: {decoded!r}")
    # Any truncation is refused, never misread.
    cut = fdp.ConsumeIntInRange(0, max(0, len(encoded) - 1))
    try:
        partial = wire.decode(encoded[:cut])
    except wire.WireError:
        pass
    else:
        # A shorter message may still be whole if the payload was cut: it must then be a prefix.
        if not op.payload.startswith(partial.payload) or partial.kind != op.kind:
            raise AssertionError(f"a truncated message decoded as {partial!r}")


if __name__ == "__main__":
    _common.main(test_one_input)
