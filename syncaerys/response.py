"""Response: the Aerys-style response given to ``on_handshake`` and responders."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.http import dump_cookie

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["Response"]


class Response:
    """A response being built: ``status``, ``headers``, cookies and a body.

    In ``on_handshake`` it starts at 101: headers and cookies set then go out
    with the 101. Setting ``status`` to 300 or more denies the upgrade and the
    client gets this response, body and headers included. ``subprotocol`` is
    the subprotocol to accept (preset from the gateway's ``subprotocols``).

    Not thread-safe: a response belongs to the request whose thread builds it. No method blocks.
    """

    def __init__(self, status: int = 200) -> None:
        self._status = status
        self._status_set = False
        self._reason = ""
        self.headers = Headers()
        self.body = b""
        #: The subprotocol accepted in a websocket handshake, or ``None``.
        self.subprotocol: str | None = None

    @property
    def status(self) -> int:
        """The HTTP status code. Not thread-safe; never blocks."""
        return self._status

    @status.setter
    def status(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            raise ValueError(f"invalid HTTP status {value!r}")
        self._status = value
        self._status_set = True

    @property
    def reason(self) -> str:
        """The reason phrase; derived from ``status`` when left empty.

        Setting one with a line break or another control character raises
        :class:`ValueError`: it would let a request's input write headers of its own.

        Not thread-safe; never blocks.
        """
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        if not isinstance(value, str) or any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            raise ValueError(f"invalid reason phrase {value!r}: no line breaks or control characters")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"invalid reason phrase {value!r}: HTTP status lines are Latin-1") from None
        self._reason = value

    @property
    def started(self) -> bool:
        """Whether a responder has responded: set a status, a header or a body. Not thread-safe; never blocks."""
        return self._status_set or bool(self.body) or len(self.headers) > 0

    def set_header(self, name: str, value: str) -> None:
        """Set a header, replacing any of the same name. Not thread-safe; never blocks."""
        self.headers.set(name, value)

    def add_header(self, name: str, value: str) -> None:
        """Add a header, keeping any of the same name. Not thread-safe; never blocks."""
        self.headers.add(name, value)

    def set_cookie(self, key: str, value: str = "", **options: Any) -> None:
        """Add a ``Set-Cookie`` header; options as :func:`werkzeug.http.dump_cookie`. Not thread-safe; never blocks."""
        self.headers.add("Set-Cookie", dump_cookie(key, value, **options))

    def send(self, body: str | bytes) -> None:
        """Append to the body (``str`` is encoded as UTF-8). Not thread-safe; never blocks."""
        self.body += body.encode("utf-8") if isinstance(body, str) else bytes(body)

    @property
    def status_line(self) -> str:
        """The HTTP status line without the version, e.g. ``101 Switching Protocols``. Not thread-safe; never blocks."""
        reason = self._reason
        if not reason:
            try:
                reason = HTTPStatus(self.status).phrase
            except ValueError:
                reason = "Unknown"
        return f"{self.status} {reason}"

    def wsgi_headers(self) -> list[tuple[str, str]]:
        """Headers for ``start_response``, with a Content-Length when missing. Not thread-safe; never blocks."""
        headers = list(self.headers.items())
        if "Content-Length" not in self.headers:
            headers.append(("Content-Length", str(len(self.body))))
        if "Content-Type" not in self.headers and self.body:
            headers.append(("Content-Type", "text/html; charset=utf-8"))  # Aerys's default
        return headers

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve this response as a WSGI application. Not thread-safe; never blocks."""
        start_response(self.status_line, self.wsgi_headers())
        if environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return [self.body]
