"""``manage.py runsyncaerys [addrport] [--migrate]``: serve the project with syncaerys's own server.

Every request goes to the project's WSGI application (``WSGI_APPLICATION``); the
websocket routes of its URLconf upgrade in the same server. Its gateways start with
the server; Ctrl-C or SIGTERM stops gracefully (``on_stop``, then 1001 to every
client). Defaults come from ``settings.SYNCAERYS["SERVER"]``; the command line wins.
For code reloading during development, use ``runserver``, which serves the same
websockets.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.core.management.base import CommandError
from django.core.management.base import CommandParser
from django.core.servers.basehttp import get_internal_wsgi_application
from django.db import connections

from .... import run
from ... import application
from ...conf import server_options

_ADDRPORT = re.compile(r"^(?:(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]+):)?(?P<port>\d+)$")


class Command(BaseCommand):
    help = "Serve the project, its websockets included, with syncaerys's threaded server."

    requires_system_checks = "__all__"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", help="port, or address:port (default 127.0.0.1:8000)")
        parser.add_argument(
            "--migrate", action="store_true", help="apply the project's migrations first (as manage.py migrate)"
        )
        parser.add_argument(
            "--max-connections",
            help="connections served at once: a number, 'none', or 'auto' (from the open-file limit)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        server = server_options()
        host = server.pop("host", "127.0.0.1")
        port = server.pop("port", 8000)
        if options["addrport"]:
            match = _ADDRPORT.match(options["addrport"])
            if match is None:
                raise CommandError(f"{options['addrport']!r} is not a port or address:port")
            host = (match["host"] or host).strip("[]")
            port = int(match["port"])
        if options["max_connections"] is not None:
            server["max_connections"] = _connections(options["max_connections"])
        if options["migrate"]:
            call_command("migrate", interactive=False, verbosity=options["verbosity"])
        self.check_migrations()
        connections.close_all()  # the checks' connections: this thread serves no request
        wsgi = application(get_internal_wsgi_application())
        self.stdout.write(f"syncaerys serving {len(wsgi.gateways())} websocket route(s) on http://{host}:{port}/")
        run(wsgi, host=host, port=port, **server)


def _connections(value: str) -> int | str | None:
    if value in ("auto", "none"):
        return None if value == "none" else value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise CommandError(f"--max-connections expects a positive number, 'auto' or 'none', not {value!r}")
    return number
