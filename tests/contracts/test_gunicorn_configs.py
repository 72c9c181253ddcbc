"""The shipped gunicorn configs start without warnings."""

from __future__ import annotations

import runpy
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_http import get
from tests.utils import PROMPTLY
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [ROOT / "examples" / "gunicorn.conf.py", ROOT / "examples" / "cluster" / "gunicorn.conf.py"]


@pytest.mark.parametrize("config", CONFIGS, ids=["flask", "cluster"])
def test_gthread_has_room_for_keepalive_or_none_is_asked(config: Path) -> None:
    # gunicorn's gthread check: worker_connections - threads <= 0 with keepalive on warns.
    settings = runpy.run_path(str(config))
    assert settings["worker_class"] == "gthread"
    assert settings["worker_connections"] - settings["threads"] > 0 or settings.get("keepalive", 2) == 0


@pytest.mark.timeout(60)
def test_the_flask_config_as_shipped_boots_without_a_warning(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(CONFIGS[0]),
                "-b",
                f"127.0.0.1:{port}",
                "--no-control-socket",
                "examples.flask_app:app",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def serves() -> bool:
        assert process.poll() is None, log_path.read_text()
        try:
            return get(port, "/")[0] == 200
        except OSError:
            return False

    try:
        wait_until(serves, timeout=6 * PROMPTLY, interval=0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(6 * PROMPTLY)
    output = log_path.read_text()
    assert "[WARNING]" not in output and "No keepalived" not in output, output
