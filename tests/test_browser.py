"""A real browser against examples/chat.py: two headless Chromium pages chat and leave.

Skipped when Playwright's Python package or /usr/bin/chromium is missing (no
browser is ever downloaded: Playwright drives the system's Chromium).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_examples import example
from tests.utils import SECOND

CHROMIUM = os.environ.get("SYNCAERYS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Bound of every browser-side wait, in milliseconds.
WAIT_MS = 15_000 * SECOND

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        manager = sync_api.sync_playwright().start()
    except Exception as error:  # the Node driver cannot run here
        pytest.skip(f"the Playwright driver does not run: {error}")
    try:
        chromium = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=WAIT_MS)
    except Exception as error:
        manager.stop()
        pytest.skip(f"Chromium does not start: {error}")
    try:
        yield chromium
    finally:
        chromium.close()
        manager.stop()


def join(page: Any, base: str, name: str) -> None:
    """Open the chat page and join as ``name``."""
    # A background tab gets no animation frames, which Playwright's click waits for.
    page.bring_to_front()
    page.goto(base + "/", timeout=WAIT_MS)
    page.fill("#name", name, timeout=WAIT_MS)
    page.click("#join", timeout=WAIT_MS)
    sync_api.expect(page.locator("#status")).to_have_text(f"connected as {name}", timeout=WAIT_MS)


def shows(page: Any, line: str) -> None:
    """Wait until the page's message list has an item with exactly ``line``."""
    items = page.locator("#messages li").filter(has_text=line)
    sync_api.expect(items.last).to_have_text(line, timeout=WAIT_MS)


def test_two_pages_chat_and_one_leaves(browser: Any, tmp_path: Path) -> None:
    with example("chat", tmp_path) as server:
        base = f"http://127.0.0.1:{server.port}"
        context = browser.new_context()
        try:
            page_a = context.new_page()
            page_b = context.new_page()
            join(page_a, base, "ann")
            shows(page_a, "* ann joined")
            join(page_b, base, "bob")
            shows(page_b, "* bob joined")
            shows(page_a, "* bob joined")

            page_a.bring_to_front()
            page_a.fill("#text", "hello from ann", timeout=WAIT_MS)
            page_a.click("#send", timeout=WAIT_MS)
            shows(page_a, "ann: hello from ann")
            shows(page_b, "ann: hello from ann")
            sync_api.expect(page_a.locator("#text")).to_have_value("", timeout=WAIT_MS)

            page_b.close()
            shows(page_a, "* bob left")
            # ann is still connected and can keep talking.
            page_a.fill("#text", "still here", timeout=WAIT_MS)
            page_a.press("#text", "Enter", timeout=WAIT_MS)
            shows(page_a, "ann: still here")
            texts = page_a.locator("#messages li").all_inner_texts()
            assert texts == [
                "* ann joined",
                "* bob joined",
                "ann: hello from ann",
                "* bob left",
                "ann: still here",
            ]
        finally:
            context.close()
        assert server.terminate() == 0
