"""The server's request threads: reused for the next request, never making one wait, ended when idle."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator

import pytest

from syncaerys.serving.request_threads import RequestThreads
from tests.utils import PROMPTLY
from tests.utils import wait_until

NAME = "test-request-thread"


def ours() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == NAME]


@pytest.fixture
def threads() -> Iterator[RequestThreads]:
    pool = RequestThreads(NAME, idle_timeout=PROMPTLY)
    yield pool
    pool.close()
    wait_until(lambda: not ours())


def run_and_wait(pool: RequestThreads) -> int:
    """Submit one request; return the ident of the thread that ran it."""
    ran: list[int] = []
    done = threading.Event()

    def request() -> None:
        ran.append(threading.get_ident())
        done.set()

    pool.submit(request)
    assert done.wait(PROMPTLY)
    return ran[0]


def test_a_thread_whose_request_is_over_serves_the_next(threads: RequestThreads) -> None:
    first = run_and_wait(threads)
    wait_until(lambda: threads.idle_count() == 1)
    assert run_and_wait(threads) == first
    assert len(ours()) == 1


def test_no_request_waits_for_a_busy_one(threads: RequestThreads) -> None:
    release = threading.Event()

    def blocked() -> None:
        release.wait(PROMPTLY)

    threads.submit(blocked)
    try:
        run_and_wait(threads)  # on a second thread, while the first is blocked
        assert len(ours()) == 2
    finally:
        release.set()


def test_idle_threads_end_after_the_timeout_and_at_close() -> None:
    pool = RequestThreads(NAME, idle_timeout=0.05)
    run_and_wait(pool)
    wait_until(lambda: not ours())  # the idle timeout
    slow = RequestThreads(NAME, idle_timeout=60.0)
    run_and_wait(slow)
    slow.close()
    wait_until(lambda: not ours())  # the close, long before the timeout
    with pytest.raises(RuntimeError, match="closed"):
        slow.submit(lambda: None)


def test_each_request_starts_with_a_fresh_context(threads: RequestThreads) -> None:
    user = contextvars.ContextVar("user", default="nobody")
    seen: list[str] = []
    done = threading.Event()

    def first() -> None:
        user.set("ann")  # a middleware that never resets it
        seen.append(user.get())

    def second() -> None:
        seen.append(user.get())
        done.set()

    threads.submit(first)
    wait_until(lambda: threads.idle_count() == 1)
    threads.submit(second)
    assert done.wait(PROMPTLY)
    assert seen == ["ann", "nobody"] and len(ours()) == 1
