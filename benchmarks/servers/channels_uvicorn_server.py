"""Django Channels' sync WebsocketConsumer (benchmarks/djbench/consumers.py) under uvicorn.

``uvicorn.run("djbench.asgi:application")`` with uvicorn[standard]'s defaults
(uvloop, httptools, its websockets implementation), warnings only, no access log,
lifespan off (Django's ASGI handler has none). As under daphne, every handler
call of a sync consumer runs on asgiref's one thread-sensitive executor thread.
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
    import uvicorn

    uvicorn.run(
        "djbench.asgi:application", host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )


if __name__ == "__main__":
    main()
