"""Handshake checks: random requests get the answer an independent statement of RFC 6455 4.2.1 gives.

Also the Origin check and the 101's headers: only documented results, no
other exception, and no line break ever reaches a response line.
"""

from __future__ import annotations

import _common
import atheris

with atheris.instrument_imports(include=["syncaerys"]):
    from syncaerys.protocol.handshake import check_origin
    from syncaerys.protocol.handshake import check_request
    from syncaerys.protocol.handshake import response_101
    from syncaerys.response import Response

from tests.protocol.test_handshake_fuzz import Headers
from tests.protocol.test_handshake_fuzz import expected_status

METHODS = ["GET", "POST", "get", "HEAD", ""]
VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2", ""]
NAMES = ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    method = METHODS[fdp.ConsumeIntInRange(0, len(METHODS) - 1)]
    version = VERSIONS[fdp.ConsumeIntInRange(0, len(VERSIONS) - 1)]
    has_body = fdp.ConsumeBool()
    headers = Headers()
    for name in NAMES:
        if fdp.ConsumeBool():
            headers[name] = fdp.ConsumeUnicodeNoSurrogates(40)
    rejection = check_request(method, version, headers, has_body)
    expected = expected_status(method, version, has_body, headers)
    if (rejection.status if rejection else None) != expected:
        raise AssertionError(f"{rejection} != {expected} for {method} {version} {dict(headers)} body={has_body}")

    origin = fdp.ConsumeUnicodeNoSurrogates(60) if fdp.ConsumeBool() else None
    host = fdp.ConsumeUnicodeNoSurrogates(30) if fdp.ConsumeBool() else None
    refused = check_origin(origin, "same-origin", host)
    if origin is None and refused is not None:
        raise AssertionError("a request without Origin was refused")

    name = fdp.ConsumeUnicodeNoSurrogates(20)
    value = fdp.ConsumeUnicodeNoSurrogates(40)
    try:
        head = response_101("dGhlIHNhbXBsZSBub25jZQ==", None, [(name, value)])
    except (ValueError, UnicodeEncodeError):
        pass
    else:
        if head.count(b"\r\n") != 6 or b"\n" in head.replace(b"\r\n", b""):
            raise AssertionError(f"a line break got into the 101: {head!r}")

    response = Response(403)
    try:
        response.reason = fdp.ConsumeUnicodeNoSurrogates(40)
    except ValueError:
        pass
    line = response.status_line
    if "\r" in line or "\n" in line:
        raise AssertionError(f"a line break got into the status line: {line!r}")


if __name__ == "__main__":
    _common.main(test_one_input)
