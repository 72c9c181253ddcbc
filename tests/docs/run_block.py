"""Runs one documentation block (a file) the way tests/docs/test_code_blocks.py asks.

``python run_block.py FILE script``: exec the file, then call its ``test_*`` functions.
``python run_block.py FILE serve``: exec it with every syncaerys Server on a
free port of 127.0.0.1, printing ``PORT <n>`` once a server serves.
"""

from __future__ import annotations

import sys
from typing import Any

import syncaerys.server


def _serve_on_free_ports() -> None:
    original_init = syncaerys.server.Server.__init__
    original_serve = syncaerys.server.Server.serve_in_thread

    def init(self: Any, app: Any, host: str = "127.0.0.1", port: int = 1337, **options: Any) -> None:
        original_init(self, app, "127.0.0.1", 0, **options)

    def serve_in_thread(self: Any) -> None:
        original_serve(self)
        print(f"PORT {self.port}", flush=True)

    syncaerys.server.Server.__init__ = init  # type: ignore[method-assign]
    syncaerys.server.Server.serve_in_thread = serve_in_thread  # type: ignore[method-assign]


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "serve":
        _serve_on_free_ports()
    with open(path, encoding="utf-8") as file:
        code = compile(file.read(), path, "exec")
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": path}
    exec(code, namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()
            print(f"PASSED {name}", flush=True)


if __name__ == "__main__":
    main()
