"""Authenticating the upgrade: 401 or 403 from ``on_handshake``, the user to ``on_open``.

Run ``python examples/auth.py`` (``--port N`` to change the port). The
websocket at ws://127.0.0.1:1337/ws wants a token, either as a query
parameter (``/ws?token=...``) or as a ``token`` cookie:

* no token: 401 with ``WWW-Authenticate: Bearer realm="syncaerys-example"``;
* a token that is not known: 403;
* a known token: the upgrade goes ahead, and what ``on_handshake`` returned
  (the user and where the token came from) reaches ``on_open``, which greets
  the user with it. Every message is then echoed back with the user's name.

The tokens are the two demo ones below; a real application would look the
token or session cookie up in its own store. Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import hmac
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

import syncaerys
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Response
from syncaerys import Router
from syncaerys import Websocket
from syncaerys import websocket

#: Demo tokens and the users they belong to.
TOKENS = {
    "alice-s3cret": "alice",
    "bob-s3cret": "bob",
}


@dataclass(frozen=True)
class Session:
    """What ``on_handshake`` hands to ``on_open``."""

    user: str
    via: str  # "query" or "cookie"


def user_for(token: str) -> str | None:
    """The user a token belongs to; compared in constant time."""
    found = None
    for known, user in TOKENS.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = user
    return found


class Authenticated(Websocket):
    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.sessions: dict[int, Session] = {}

    def on_handshake(self, request: Request, response: Response, **route_args: Any) -> Session | None:
        token, via = request.args.get("token"), "query"
        if token is None:
            token, via = request.cookies.get("token"), "cookie"
        if not token:
            response.status = 401
            response.set_header("WWW-Authenticate", 'Bearer realm="syncaerys-example"')
            response.send("A token is required (?token=... or a token cookie).\n")
            return None
        user = user_for(token)
        if user is None:
            response.status = 403
            response.send("Unknown token.\n")
            return None
        return Session(user, via)

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        session: Session = handshake_data
        self.sessions[client_id] = session  # one key per client thread: no lock needed
        self.endpoint.send(f"hello {session.user} (token from the {session.via})", client_id)

    def on_data(self, client_id: int, message: Message) -> None:
        data = message.result()
        self.endpoint.send(f"{self.sessions[client_id].user}: {data!s}", client_id)

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        self.sessions.pop(client_id, None)


def make_router() -> Router:
    """The authenticated websocket at ``/ws``."""
    return Router().get("/ws", websocket(Authenticated(), text_only=True))


def main() -> None:
    parser = argparse.ArgumentParser(description="Token authentication in on_handshake")
    parser.add_argument("--port", type=int, default=1337)
    args = parser.parse_args()
    syncaerys.run(make_router(), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
