"""``manage.py announce ROOM TEXT``: push to a room from another process, through the Redis backplane."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand
from django.core.management.base import CommandParser

import syncaerys


class Command(BaseCommand):
    help = "Broadcast TEXT to ROOM on every process serving the chat (DJ_REDIS_URL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("room")
        parser.add_argument("text")

    def handle(self, *args: Any, **options: Any) -> None:
        publisher = syncaerys.Publisher(os.environ["DJ_REDIS_URL"], channel="djchat")
        try:
            nodes = publisher.broadcast(options["text"], room=options["room"])
        finally:
            publisher.close_connection()
        self.stdout.write(f"published to {nodes} node(s)")
