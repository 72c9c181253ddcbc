"""The shared timer: order, cancellation, and a failing callback that stops nothing."""

from __future__ import annotations

import logging
import threading

import pytest

from syncaerys.client.timer import Timer
from tests.utils import PROMPTLY


def test_callbacks_run_in_deadline_order_and_cancelled_ones_do_not() -> None:
    timer = Timer(name="test-timer")
    ran: list[str] = []
    done = threading.Event()
    # Deadlines far apart, so that a slow scheduling thread cannot swap them.
    timer.call_later(0.5, lambda: [ran.append("late"), done.set()])  # type: ignore[func-returns-value]
    cancelled = timer.call_later(0.3, lambda: ran.append("cancelled"))
    timer.call_later(0.01, lambda: ran.append("early"))
    cancelled.cancel()
    assert done.wait(PROMPTLY)
    assert ran == ["early", "late"]


def test_an_earlier_deadline_wakes_the_thread() -> None:
    timer = Timer(name="test-timer")
    first = threading.Event()
    timer.call_later(3600, lambda: None)  # the thread now sleeps for an hour
    timer.call_later(0.01, first.set)
    assert first.wait(PROMPTLY)


def test_an_exception_is_logged_and_the_timer_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    timer = Timer(name="test-timer")
    after = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom in a timer callback")

    with caplog.at_level(logging.ERROR, logger="syncaerys"):
        timer.call_later(0.0, boom)
        timer.call_later(0.01, after.set)
        assert after.wait(PROMPTLY)
    assert "exception in a timer callback" in caplog.text and "boom in a timer callback" in caplog.text
