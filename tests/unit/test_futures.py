"""SendFuture and BroadcastTracker: results, timeouts, callbacks, counting."""

from __future__ import annotations

import threading

import pytest

from syncaerys.exceptions import BackplaneError
from syncaerys.exceptions import ClientException
from syncaerys.futures import BroadcastResult
from syncaerys.futures import BroadcastTracker
from syncaerys.futures import SendFuture
from syncaerys.futures import resolve_unshared
from tests.utils import PROMPTLY


def test_result_blocks_until_another_thread_resolves_it() -> None:
    future: SendFuture[int] = SendFuture()
    with pytest.raises(TimeoutError):
        future.result(timeout=0.01)
    threading.Timer(0.01, future.message_written, args=(1, 42)).start()
    assert future.result(timeout=PROMPTLY) == 42 and future.done() and future.exception() is None


def test_the_first_outcome_wins_and_callbacks_run_once() -> None:
    future: SendFuture[int] = SendFuture()
    seen: list[object] = []
    future.add_done_callback(lambda f: seen.append(f.exception()))
    error = ClientException("gone")
    future.message_failed(3, error)
    future.set_result(5)  # too late: ignored
    assert seen == [error]
    with pytest.raises(ClientException):
        future.result()
    # Added after: runs at once, in this thread.
    future.add_done_callback(lambda f: seen.append("late"))
    assert seen == [error, "late"]


def test_a_future_resolved_before_it_is_shared_behaves_as_one_resolved_by_set_result() -> None:
    """resolve_unshared: the send written at once (no lock); afterwards the future is an ordinary done one."""
    future: SendFuture[int] = SendFuture()
    resolve_unshared(future, 34)
    seen: list[object] = []
    future.add_done_callback(lambda f: seen.append(f.result()))
    future.set_exception(ClientException("too late"))  # ignored: already done
    assert (future.done(), future.result(timeout=0), future.exception(timeout=0), seen) == (True, 34, None, [34])
    assert repr(future) == "<SendFuture done: 34>"


def test_a_failing_callback_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    future: SendFuture[int] = SendFuture()

    def boom(_: SendFuture[int]) -> None:
        raise RuntimeError("boom")

    future.add_done_callback(boom)
    future.set_result(1)
    assert future.result() == 1 and "done callback" in caplog.text


def test_a_tracker_counts_each_client_once_and_resolves_at_the_last() -> None:
    future: SendFuture[BroadcastResult] = SendFuture()
    tracker = BroadcastTracker(future, pending=3)
    tracker.message_written(1, 10)
    tracker.message_failed(2, ClientException("closed"))
    assert not future.done()
    tracker.skip(3)
    assert future.result(timeout=0) == BroadcastResult(delivered=1, failed=(2, 3))


def test_a_tracker_told_a_tally_resolves_only_once_everything_is_counted() -> None:
    future: SendFuture[BroadcastResult] = SendFuture()
    tracker = BroadcastTracker(future, pending=5)
    tracker.message_written(4, 10)  # a copy the flusher wrote, reported while the fan-out still runs
    tracker.skip(5)
    assert not future.done()
    tracker.messages_written(3)  # the fan-out's tally of those written at once
    assert future.result(timeout=0) == BroadcastResult(delivered=4, failed=(5,))


def test_a_tracker_fails_when_publishing_failed_but_keeps_the_local_result() -> None:
    future: SendFuture[BroadcastResult] = SendFuture()
    tracker = BroadcastTracker(future, pending=1, publishes=1)
    tracker.published(SendFuture.failed(BackplaneError("redis is down")))
    tracker.message_written(1, 10)
    error = future.exception(timeout=0)
    assert isinstance(error, BackplaneError)
    assert error.local_result == BroadcastResult(delivered=1)


def test_nothing_to_do_is_done_at_once() -> None:
    future: SendFuture[BroadcastResult] = SendFuture()
    BroadcastTracker(future, pending=0)
    assert future.result(timeout=0) == BroadcastResult(0)
