"""One forwarding header is believed, the one the trusted proxy writes (``proxy_header``).

Before, both ``Forwarded`` and ``X-Forwarded-For`` were read and ``Forwarded``
won; nginx with the README's config passes the client's own ``Forwarded``
through untouched, so any client could choose its ``remote_address``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import syncaerys
from tests.test_nginx import backend
from tests.test_nginx import connect_from
from tests.test_nginx import nginx
from tests.utils import PROMPTLY
from tests.utils import Recorder


@pytest.mark.parametrize("header", ["Forwarded", "X-Forwarded-For"])
def test_through_the_readme_config_no_client_header_names_the_client(tmp_path: Path, header: str) -> None:
    """Before: nginx passed the client's ``Forwarded`` through and syncaerys preferred it to X-Forwarded-For."""
    value = "for=203.0.113.66" if header == "Forwarded" else "203.0.113.66"
    with backend(trusted_proxies=["127.0.0.1"]) as (server, recorder), nginx(tmp_path, server.port) as proxy:
        with connect_from("127.0.0.2", proxy.port, **{header: value}) as ws:  # type: ignore[attr-defined]
            _, client_id, _ = recorder.wait_event("open")
            info = recorder.endpoint.get_info(client_id)
            ws.send("x")
            ws.recv(timeout=PROMPTLY)
    assert info is not None and info.remote_address.split(":")[0] == "127.0.0.2"


@pytest.mark.parametrize(
    ("proxy_header", "expected"),
    [
        (None, "198.51.100.7"),  # the default: X-Forwarded-For only, Forwarded is not read
        ("X-Forwarded-For", "198.51.100.7"),
        ("Forwarded", "203.0.113.66"),
        ("forwarded", "203.0.113.66"),
    ],
)
def test_only_the_configured_proxy_header_is_read(proxy_header: str | None, expected: str) -> None:
    options = {"trusted_proxies": ["127.0.0.1"]} | ({} if proxy_header is None else {"proxy_header": proxy_header})
    headers = {"Forwarded": "for=203.0.113.66", "X-Forwarded-For": "198.51.100.7"}
    with backend(**options) as (server, recorder):
        with connect_from("127.0.0.1", server.port, **headers):  # type: ignore[attr-defined]
            _, client_id, _ = recorder.wait_event("open")
            info = recorder.endpoint.get_info(client_id)
    assert info is not None and info.remote_address == expected


@pytest.mark.parametrize("proxy_header", ["X-Real-IP", "", None])
def test_proxy_header_is_checked_when_the_server_is_made(proxy_header: object) -> None:
    with pytest.raises(ValueError, match="proxy_header must be 'X-Forwarded-For' or 'Forwarded'"):
        syncaerys.Server(syncaerys.websocket(Recorder()), port=0, proxy_header=proxy_header)  # type: ignore[arg-type]
