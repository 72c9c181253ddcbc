"""The tutorial's files as a reader makes them: step 4 serves step 1's ``echo.py`` from the shell."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from websockets.sync.client import connect

from tests.docs.blocks import collect
from tests.utils import PROMPTLY
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial"


def test_step_4_serves_the_echo_py_of_step_1_from_the_shell(tmp_path: Path) -> None:
    # Step 4 ran chat:Chat, a file the tutorial never creates.
    command = re.search(r"`(python -m syncaerys \S+)", (TUTORIAL / "deploy.md").read_text()).group(1)  # type: ignore[union-attr]
    target = command.split()[-1]
    module, _, _ = target.partition(":")
    echo = next(b for b in collect(TUTORIAL / "echo.md") if b.mode == "serve")
    assert (TUTORIAL / "echo.md").read_text().count(f"`{module}.py`") >= 1, f"step 1 never names {module}.py"
    (tmp_path / f"{module}.py").write_text(echo.code, encoding="utf-8")
    port = free_port()
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "syncaerys", target, "--port", str(port), "--cpu", "none"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: process.poll() is not None or accepts(port), timeout=6 * PROMPTLY, interval=0.05)
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=PROMPTLY) as ws:
            ws.send("hello")
            assert ws.recv(timeout=PROMPTLY) == "hello"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(6 * PROMPTLY) == 0
    assert "syncaerys.run() was called" not in (tmp_path / "server.log").read_text()
