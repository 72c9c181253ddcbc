"""Every python block of the README (and of docs/) runs as written, against a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.docs.blocks import Block
from tests.docs.blocks import collect
from tests.utils import PROMPTLY
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("run_block.py")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [block for document in DOCUMENTS if document.is_file() for block in collect(document)]
STARTUP = 6 * PROMPTLY


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_the_readme_has_blocks_to_run() -> None:
    assert len([b for b in BLOCKS if b.path.name == "README.md"]) >= 6


@pytest.mark.timeout(90)
@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    if block.options.get("needs") == "redis" and not redis_answers():
        if os.environ.get("SYNCAERYS_REQUIRE_REDIS"):
            pytest.fail("this block needs a Redis on 127.0.0.1:6379 and SYNCAERYS_REQUIRE_REDIS is set")
        pytest.skip("needs a Redis on 127.0.0.1:6379")
    if block.mode == "excerpt":
        # A piece of a file that runs in the suite (a Django project's settings, its URLconf).
        source = ROOT / block.options["of"]
        assert block.code in source.read_text(encoding="utf-8"), f"{block.name} is not an excerpt of {source}"
        return
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
    log_path = tmp_path / "block.log"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    if block.mode == "script":
        done = subprocess.run(
            [sys.executable, str(RUNNER), str(script), "script"],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{block.name}:\n{block.code}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        return
    if block.mode == "client":
        run_client(block, tmp_path, environment)
        return
    assert block.mode == "serve", f"{block.name}: unknown directive {block.mode!r}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, str(RUNNER), str(script), "serve"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        assert line.startswith("PORT "), f"{block.name} did not start: {line!r}\n{log_path.read_text()}"
        port = int(line.split()[1])
        exercise(block, port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(STARTUP) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert "Traceback" not in output and " ERROR " not in output, output


def run_client(block: Block, tmp_path: Path, environment: dict[str, str]) -> None:
    """Serve the ``serve`` block above ``block``, then run ``block`` against it (its 1337 made the port)."""
    above = [b for b in BLOCKS if b.path == block.path and b.line < block.line and b.mode == "serve"]
    assert above, f"{block.name}: a client block needs a serve block above it"
    server_script = tmp_path / "server.py"
    server_script.write_text(above[-1].code, encoding="utf-8")
    with (tmp_path / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, str(RUNNER), str(server_script), "serve"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert server.stdout is not None
    try:
        line = server.stdout.readline()
        assert line.startswith("PORT "), f"{above[-1].name} did not start: {line!r}"
        client_script = tmp_path / "client.py"
        client_script.write_text(block.code.replace("1337", line.split()[1]), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(RUNNER), str(client_script), "script"],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{block.name}:\n{block.code}\n{done.stdout}{done.stderr}"
        if "expect" in block.options:
            assert block.options["expect"] in done.stdout, done.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(STARTUP)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


FLASK_BLOCKS = [block for block in BLOCKS if block.options.get("flask") == "run"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("block", FLASK_BLOCKS, ids=[block.name for block in FLASK_BLOCKS])
def test_flask_block_runs_under_flask_run(block: Block, tmp_path: Path) -> None:
    """The docs say these apps run under ``flask run``: a real one serves them, on the port it was given."""
    (tmp_path / "block.py").write_text(block.code, encoding="utf-8")
    log_path = tmp_path / "flask.log"
    port = free_port()
    flask = Path(sys.executable).with_name("flask")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(flask), "--app", "block", "run", "--port", str(port)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: process.poll() is not None or accepts(port), timeout=STARTUP, interval=0.05)
        assert process.poll() is None, log_path.read_text()
        exercise(block, port)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STARTUP)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert "Traceback" not in output and "syncaerys.run() was called" not in output, output


def exercise(block: Block, port: int) -> None:
    path = block.options.get("path", "/")
    address = f"ws://127.0.0.1:{port}{path}"
    if "status" in block.options:
        with pytest.raises(InvalidStatus) as refused:
            connect(address, open_timeout=PROMPTLY)
        assert refused.value.response.status_code == int(block.options["status"])
        return
    with connect(address, open_timeout=PROMPTLY, close_timeout=PROMPTLY) as ws:
        if "send" in block.options:
            ws.send(block.options["send"])
        if "expect" in block.options:
            assert ws.recv(timeout=PROMPTLY) == block.options["expect"], block.name
