"""The work of one message, the same for both servers: the benchmark protocol with an ORM query.

A text message ``{"db": SECONDS, "id": N, ...}`` is answered after
``SELECT pg_sleep(SECONDS)`` through Django's ``connection.cursor()`` (a blocking
query of that length on PostgreSQL), with ``{"id": N, "slept": SECONDS, "ok": true}``.
Every other message is echoed.
"""

from __future__ import annotations

import json

from django.db import connection

DB_PREFIX = '{"db":'


def answer(message: str | bytes) -> str | bytes:
    """The reply to ``message``. Blocks for the query; thread-safe (Django's connections are per thread)."""
    if not isinstance(message, str) or not message.startswith(DB_PREFIX):
        return message
    request = json.loads(message)
    seconds = request["db"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
        cursor.fetchone()
    return json.dumps({"id": request.get("id"), "slept": seconds, "ok": True})
