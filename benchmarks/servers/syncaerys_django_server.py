"""syncaerys inside Django: benchmarks/djbench's URLconf served by ``manage.py runsyncaerys``.

The handler (djbench/sockets.py) is mounted with ``syncaerys.django.websocket``;
each client's ``on_data`` runs the ORM query on the client's own thread, inside
Django's request cycle for connections. runsyncaerys runs ``syncaerys.run()``
with its defaults (as syncaerys_server.py), without a connection cap.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import _common

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/, where djbench is
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djbench.settings")


def main() -> None:
    port = _common.setup()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", "runsyncaerys", f"127.0.0.1:{port}", "--verbosity", "0"])


if __name__ == "__main__":
    main()
