"""Inflater: any compressed input gives at most the limit, or a ProtocolError (1007, 1009); never more.

Half the inputs are real deflate streams (compressed from fuzzed text, with
sync flushes, full flushes or a BFINAL block) cut into frames; the output must
then equal the original. The other half are raw bytes.
"""

from __future__ import annotations

import zlib

import _common
import atheris

with atheris.instrument_imports(include=["syncaerys"]):
    from syncaerys.exceptions import ProtocolError
    from syncaerys.protocol.deflate import DeflateParams
    from syncaerys.protocol.deflate import Inflater

LIMIT = 1 << 16


def params(fdp: atheris.FuzzedDataProvider) -> DeflateParams:
    return DeflateParams(
        server_no_context_takeover=fdp.ConsumeBool(),
        client_no_context_takeover=fdp.ConsumeBool(),
        server_window_bits=15,
        announce_server_window=False,
    )


def real_stream(fdp: atheris.FuzzedDataProvider) -> None:
    agreed = params(fdp)
    inflater = Inflater(agreed)
    compressor = zlib.compressobj(wbits=-15)
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        if agreed.client_no_context_takeover:
            compressor = zlib.compressobj(wbits=-15)  # what the client agreed to do
        message = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 3000))
        final = fdp.ConsumeProbability() < 0.2
        if final:
            payload = compressor.compress(message) + compressor.flush(zlib.Z_FINISH)
            compressor = zlib.compressobj(wbits=-15)
        else:
            payload = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4]
        cut = fdp.ConsumeIntInRange(0, len(payload))
        out = inflater.inflate(payload[:cut], False, LIMIT) + inflater.inflate(payload[cut:], True, LIMIT)
        if out != message:
            raise AssertionError(f"inflated {out[:80]!r}, sent {message[:80]!r} (final block: {final})")


def raw_bytes(fdp: atheris.FuzzedDataProvider) -> None:
    inflater = Inflater(params(fdp))
    limit = fdp.ConsumeIntInRange(0, LIMIT)
    try:
        while fdp.remaining_bytes():
            out = inflater.inflate(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200)), fdp.ConsumeBool(), limit)
            if len(out) > limit:
                raise AssertionError(f"{len(out)} bytes out, limit {limit}")
    except ProtocolError as error:
        if error.code not in (1007, 1009):
            raise AssertionError(f"unexpected close code {error.code}") from error


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        real_stream(fdp)
    else:
        raw_bytes(fdp)


if __name__ == "__main__":
    _common.main(test_one_input)
