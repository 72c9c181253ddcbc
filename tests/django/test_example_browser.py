"""examples/django_chat in headless Chromium, started with its documented command on a copy of the example.

Two pages join with a name (Django's session login), chat in a room over the
websocket (every line stored by the ORM), a newcomer sees the history, and a
page that leaves is announced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.django.server import ROOT
from tests.test_browser import WAIT_MS
from tests.test_browser import browser  # noqa: F401 - the fixture
from tests.test_browser import sync_api
from tests.utils import accepts
from tests.utils import free_port

EXAMPLE = ROOT / "examples" / "django_chat"


@contextlib.contextmanager
def documented_start(tmp_path: Path) -> Iterator[int]:
    """``python examples/django_chat/manage.py runsyncaerys --migrate`` on a copy (its SQLite file stays there)."""
    copy = tmp_path / "django_chat"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("CHAT_DATABASE_URL", None)
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(copy / "manage.py"), "runsyncaerys", "--migrate", f"127.0.0.1:{port}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not accepts(port):
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(30)
    assert "Traceback" not in (tmp_path / "server.log").read_text(), (tmp_path / "server.log").read_text()


def join(page: Any, base: str, name: str, room: str) -> None:
    page.bring_to_front()
    page.goto(f"{base}/room/{room}/", timeout=WAIT_MS)  # login_required sends the page to /join/?next=...
    page.fill("#name", name, timeout=WAIT_MS)
    page.click("#join", timeout=WAIT_MS)
    sync_api.expect(page.locator("#status")).to_have_text("connected", timeout=WAIT_MS)


def say(page: Any, text: str) -> None:
    page.bring_to_front()
    page.fill("#text", text, timeout=WAIT_MS)
    page.click("#send", timeout=WAIT_MS)


def shows(page: Any, line: str) -> None:
    sync_api.expect(page.locator("#messages li").filter(has_text=line).last).to_have_text(line, timeout=WAIT_MS)


@pytest.mark.timeout(120)
def test_two_browsers_chat_in_a_room(browser: Any, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    with documented_start(tmp_path) as port:
        base = f"http://127.0.0.1:{port}"
        ann_context, bob_context = browser.new_context(), browser.new_context()
        try:
            ann, bob = ann_context.new_page(), bob_context.new_page()
            join(ann, base, "ann", "lobby")
            shows(ann, "* ann joined")
            join(bob, base, "bob", "lobby")
            shows(ann, "* bob joined")
            say(bob, "hello from bob")
            shows(ann, "bob: hello from bob")
            shows(bob, "bob: hello from bob")
            bob.close()
            shows(ann, "* bob left")
            # A newcomer sees the history, read with the ORM in on_open.
            cy_context = browser.new_context()
            try:
                cy = cy_context.new_page()
                join(cy, base, "cy", "lobby")
                shows(cy, "bob: hello from bob")
            finally:
                cy_context.close()
        finally:
            ann_context.close()
            bob_context.close()
