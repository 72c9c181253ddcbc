"""Property-based tests of the handshake checks: random requests get a documented answer."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from syncaerys.protocol.handshake import check_request

VALID_KEY = base64.b64encode(b"0123456789abcdef").decode()

tokens = st.sampled_from(["websocket", "WebSocket", "upgrade", "Upgrade", "keep-alive", "h2c", "", "13", "8", " "])
header_values = st.one_of(
    st.none(),
    st.lists(tokens, max_size=3).map(", ".join),
    st.text(max_size=40),
)
keys = st.one_of(
    st.none(),
    st.just(VALID_KEY),
    st.binary(min_size=0, max_size=24).map(lambda raw: base64.b64encode(raw).decode()),
    st.text(max_size=30),
)


class Headers(dict[str, str]):
    def get(self, key: str, default: None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)


def expected_status(method: str, version: str, has_body: bool, headers: Headers) -> int | None:
    """An independent statement of RFC 6455 4.2.1's checks, in order."""

    def tokens_of(name: str) -> list[str]:
        return [t.strip().lower() for t in (headers.get(name) or "").split(",")]

    if method != "GET":
        return 405
    if version != "HTTP/1.1":
        return 505
    if not headers.get("host"):
        return 400  # RFC 7230 5.4
    if has_body:
        return 400
    if "websocket" not in tokens_of("upgrade"):
        return 426
    if "upgrade" not in tokens_of("connection"):
        return 426
    key = headers.get("sec-websocket-key")
    try:
        valid_key = key is not None and len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        valid_key = False
    if not valid_key:
        return 400
    if "13" not in tokens_of("sec-websocket-version"):
        return 426
    return None


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    method=st.sampled_from(["GET", "POST", "get", "HEAD", "PUT", ""]),
    version=st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/1.10", ""]),
    has_body=st.booleans(),
    upgrade=header_values,
    connection=header_values,
    key=keys,
    ws_version=header_values,
    host=st.sampled_from([None, "", "127.0.0.1:1337"]),
)
def test_random_requests_get_the_documented_answer(
    method: str,
    version: str,
    has_body: bool,
    upgrade: str | None,
    connection: str | None,
    key: str | None,
    ws_version: str | None,
    host: str | None,
) -> None:
    headers = Headers()
    for name, value in (
        ("host", host),
        ("upgrade", upgrade),
        ("connection", connection),
        ("sec-websocket-key", key),
        ("sec-websocket-version", ws_version),
    ):
        if value is not None:
            headers[name] = value
    rejection = check_request(method, version, headers, has_body)
    expected = expected_status(method, version, has_body, headers)
    assert (rejection.status if rejection else None) == expected
    if rejection is not None:
        assert rejection.status in {400, 405, 426, 505}
        assert rejection.body.startswith(str(rejection.status).encode())
        if rejection.status == 405:
            assert ("Allow", "GET") in rejection.headers
        if rejection.status == 426 and expected == 426 and "13" not in (ws_version or ""):
            assert ("Upgrade", "websocket") in rejection.headers


VALID = {
    "method": "GET",
    "version": "HTTP/1.1",
    "has_body": False,
    "upgrade": "websocket",
    "connection": "Upgrade",
    "key": VALID_KEY,
    "ws_version": "13",
}
MUTATIONS = {
    "method": st.sampled_from(["POST", "get", "HEAD", ""]),
    "version": st.sampled_from(["HTTP/1.0", "HTTP/2", ""]),
    "has_body": st.just(True),
    "upgrade": header_values,
    "connection": header_values,
    "key": keys,
    "ws_version": header_values,
}


@settings(max_examples=400, deadline=None, derandomize=True)
@given(data=st.data(), field=st.sampled_from(sorted(MUTATIONS)))
def test_one_mutated_field_of_a_valid_request(data: st.DataObject, field: str) -> None:
    """A valid request with one field replaced: the checks judge exactly that field."""
    request = dict(VALID)
    request[field] = data.draw(MUTATIONS[field])
    headers = Headers()
    for name, value in (
        ("upgrade", request["upgrade"]),
        ("connection", request["connection"]),
        ("sec-websocket-key", request["key"]),
        ("sec-websocket-version", request["ws_version"]),
    ):
        if value is not None:
            headers[name] = str(value)
    method, version, has_body = str(request["method"]), str(request["version"]), bool(request["has_body"])
    rejection = check_request(method, version, headers, has_body)
    assert (rejection.status if rejection else None) == expected_status(method, version, has_body, headers)
