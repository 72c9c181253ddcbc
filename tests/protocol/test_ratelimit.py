"""TokenBucket, driven with explicit ``now`` values (no clock)."""

from __future__ import annotations

import pytest

from syncaerys.protocol.ratelimit import TokenBucket


def test_starts_full() -> None:
    bucket = TokenBucket(100, 10, now=1000.0)
    assert bucket.level == 100
    assert bucket.delay(1000.0) == 0.0


def test_spending_within_the_budget_never_delays() -> None:
    bucket = TokenBucket(100, 10, now=0.0)
    bucket.spend(60, now=0.0)
    bucket.spend(40, now=0.0)
    assert bucket.level == 0
    assert bucket.delay(0.0) == 0.0


def test_overspending_delays_until_the_budget_is_back_to_zero() -> None:
    bucket = TokenBucket(100, 10, now=0.0)
    bucket.spend(150, now=0.0)  # a read has already happened: the level may go negative
    assert bucket.level == -50
    assert bucket.delay(0.0) == pytest.approx(5.0)
    assert bucket.delay(2.0) == pytest.approx(3.0)
    assert bucket.delay(4.5) == pytest.approx(0.5)
    assert bucket.delay(5.0) == 0.0
    assert bucket.delay(7.0) == 0.0


def test_refill_is_proportional_to_elapsed_time() -> None:
    bucket = TokenBucket(100, 10, now=0.0)
    bucket.spend(100, now=0.0)
    bucket.spend(0, now=2.5)
    assert bucket.level == pytest.approx(25)
    bucket.spend(30, now=2.5)
    assert bucket.level == pytest.approx(-5)
    assert bucket.delay(2.5) == pytest.approx(0.5)


def test_refill_is_capped_at_capacity() -> None:
    bucket = TokenBucket(100, 10, now=0.0)
    bucket.spend(50, now=0.0)
    bucket.spend(0, now=3600.0)
    assert bucket.level == 100
    bucket.spend(130, now=3600.0)  # the burst is at most the capacity
    assert bucket.delay(3600.0) == pytest.approx(3.0)


def test_a_repeated_now_does_not_refill() -> None:
    bucket = TokenBucket(100, 10, now=5.0)
    bucket.spend(120, now=5.0)
    assert bucket.delay(5.0) == pytest.approx(2.0)
    assert bucket.delay(5.0) == pytest.approx(2.0)
    assert bucket.level == pytest.approx(-20)


def test_delay_is_exact_for_the_spec_byte_budget() -> None:
    # max_bytes_per_minute = 8 MiB (docs/reference/options.md), refilled at 1/60 of it per second
    capacity = 8 << 20
    bucket = TokenBucket(capacity, capacity / 60, now=100.0)
    bucket.spend(capacity + capacity / 60, now=100.0)  # one second's worth over the burst
    assert bucket.delay(100.0) == pytest.approx(1.0)
    assert bucket.delay(100.5) == pytest.approx(0.5)
    assert bucket.delay(101.0) == 0.0


def test_frames_per_second_budget() -> None:
    # max_frames_per_second = 100 (docs/reference/options.md), as the connection uses it
    bucket = TokenBucket(100, 100, now=0.0)
    bucket.spend(100, now=0.0)
    assert bucket.delay(0.0) == 0.0
    bucket.spend(50, now=0.0)
    assert bucket.delay(0.0) == pytest.approx(0.5)
    assert bucket.delay(0.25) == pytest.approx(0.25)
    assert bucket.delay(0.5) == 0.0


def test_sustained_rate_matches_the_refill_rate() -> None:
    bucket = TokenBucket(10, 5, now=0.0)
    now = 0.0
    spent = 0
    # a reader that spends 1 unit whenever allowed, and otherwise waits the delay
    # (plus a nanosecond: a real clock has moved on by the time it looks again,
    # and now + wait may round to a level a hair below zero)
    while now < 100.0:
        wait = bucket.delay(now)
        if wait:
            now += wait + 1e-9
            assert bucket.delay(now) == 0.0
            continue
        bucket.spend(1, now)
        spent += 1
    # the burst, then 5 units a second
    assert 10 + 5 * 100 - 2 <= spent <= 10 + 5 * 100 + 1
