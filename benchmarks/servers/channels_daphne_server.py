"""Django Channels' sync WebsocketConsumer (benchmarks/djbench/consumers.py) under daphne, its reference server.

``daphne -b 127.0.0.1 -p PORT djbench.asgi:application`` with daphne's defaults
(verbosity 0: warnings only, no access log). Every handler call of a sync
consumer runs on asgiref's one thread-sensitive executor thread per process.
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
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["-b", "127.0.0.1", "-p", str(port), "-v", "0", "djbench.asgi:application"])


if __name__ == "__main__":
    main()
