"""Frame parser: structured frames compared with wsproto, and raw bytes that may only raise ProtocolError.

The first input byte picks the mode. Structured: the rest describes a list of
frames (opcode, FIN, RSV, mask, payload) and the places where the stream is
cut into reads; syncaerys's parser and wsproto must give the same messages,
control frames and outcome (the differences by design are normalized as in
tests/protocol/test_parser.py, whose helpers this reuses). Raw: the bytes go
to the parser, with size limits, in fuzzed chunks.
"""

from __future__ import annotations

import itertools

import _common
import atheris

with atheris.instrument_imports(include=["syncaerys"]):
    from syncaerys.exceptions import ProtocolError
    from syncaerys.protocol.parser import FrameParser

from tests.protocol.test_parser import MASK
from tests.protocol.test_parser import Spec
from tests.protocol.test_parser import run_syncaerys
from tests.protocol.test_parser import run_wsproto
from tests.protocol.test_parser import serialize

OPCODES = [0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]


def chunks_of(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


def structured(fdp: atheris.FuzzedDataProvider) -> None:
    specs = []
    for _ in range(fdp.ConsumeIntInRange(1, 6)):
        opcode = OPCODES[fdp.ConsumeIntInRange(0, len(OPCODES) - 1)]
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 140))
        if opcode == 0x8 and payload[:2] == (1014).to_bytes(2, "big"):
            payload = (1013).to_bytes(2, "big") + payload[2:]  # difference 2 of test_parser.py
        rsv = fdp.ConsumeIntInRange(0, 7) if fdp.ConsumeProbability() < 0.1 else 0
        masked = fdp.ConsumeProbability() > 0.05
        specs.append(Spec(opcode, payload, fin=fdp.ConsumeBool(), rsv=rsv, masked=masked, key=MASK))
    cuts = [fdp.ConsumeIntInRange(0, 1 << 16) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    ours = serialize(specs, False, for_wsproto=False)
    theirs = serialize(specs, False, for_wsproto=True)
    got = run_syncaerys(chunks_of(ours, cuts))
    expected = run_wsproto(chunks_of(theirs, cuts))
    if got != expected:
        raise AssertionError(f"syncaerys {got!r} != wsproto {expected!r} for {specs!r}")


def raw(fdp: atheris.FuzzedDataProvider) -> None:
    parser = FrameParser(max_frame_size=4096, max_message_size=8192, text_only=fdp.ConsumeBool())
    try:
        while fdp.remaining_bytes():
            parser.feed(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 300)))
            while (frame := parser.next_frame()) is not None:
                if frame.opcode >= 0x8 and not frame.fin:
                    raise AssertionError("a fragmented control frame came out")
    except ProtocolError as error:
        if error.code not in (1002, 1003, 1007, 1009):
            raise AssertionError(f"unexpected close code {error.code}") from error


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        structured(fdp)
    else:
        raw(fdp)


if __name__ == "__main__":
    _common.main(test_one_input)
