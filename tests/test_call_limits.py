"""The shared call ledger: sliding windows, concurrency, the day's count, pauses; across real processes."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from pytest_orch.handlers.providers import retry_after_seconds

from pytest_orch.call_limits import CallLedger, Limits, QuotaReached, day_start, reset_text


class FakeClock:
    """Time that moves only when someone sleeps: each test sees exactly what the limiter decided."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()


def ledger_at(tmp_path):
    clock = FakeClock(NOON)
    return CallLedger(tmp_path, clock=clock, sleep=clock.sleep), clock


def call(ledger: CallLedger, limits: Limits, latency: float = 0.0) -> float:
    """Reserve, send and answer one request; return when it was sent."""
    slot = ledger.acquire(limits, "t")
    sent = ledger.clock()
    ledger.clock.now += latency  # type: ignore[attr-defined]
    ledger.release(slot, "200")
    return sent


def most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_per_second_is_a_sliding_window_with_no_extra_burst(tmp_path):
    ledger, clock = ledger_at(tmp_path)
    limits = Limits("p", per_second=3)
    sent = [call(ledger, limits) for _ in range(12)]
    assert most_in_window(sent, 1.0) == 3
    # the limit is used, not wasted: 12 calls at 3 a second take about 3 seconds after the first burst
    assert sent[-1] - sent[0] == pytest.approx(3.0, abs=0.1)


def test_a_request_counts_from_its_answer(tmp_path):
    ledger, clock = ledger_at(tmp_path)
    limits = Limits("p", per_second=1)
    first = call(ledger, limits, latency=0.05)
    second = call(ledger, limits)
    # the server may have seen the first one as late as its answer: the next waits a window from there
    assert second - first >= 1.05


def test_per_minute_and_per_second_together(tmp_path):
    ledger, clock = ledger_at(tmp_path)
    limits = Limits("p", per_second=5, per_minute=10)
    sent = [call(ledger, limits) for _ in range(11)]
    assert most_in_window(sent, 1.0) == 5
    assert most_in_window(sent, 60.0) == 10
    assert sent[10] - sent[0] >= 60.0


def test_concurrency_waits_for_a_release(tmp_path):
    ledger, clock = ledger_at(tmp_path)
    limits = Limits("p", concurrency=2)
    a = ledger.acquire(limits)
    ledger.acquire(limits)
    released = []

    def sleep(seconds):  # the other process's answer comes while this one waits
        clock.now += seconds
        if not released:
            ledger.release(a, "200")
            released.append(clock.now)

    ledger.sleep = sleep
    ledger.acquire(limits)
    assert released, "the third call went out while two were in flight"


def test_the_day_quota_is_counted_and_named_with_its_reset(tmp_path):
    ledger, clock = ledger_at(tmp_path)
    limits = Limits("gemini", per_day=3)
    for _ in range(3):
        call(ledger, limits)
    assert ledger.day_block(limits) == "daily quota of gemini reached: 3/3, resets at 00:00 UTC (in 12 h 0 min)"
    with pytest.raises(QuotaReached, match="3/3"):
        ledger.acquire(limits)
    # a second run the same day continues the count; the next day starts again
    again = CallLedger(tmp_path, clock=clock, sleep=clock.sleep)
    assert again.used_today("gemini") == 3
    clock.now = day_start(clock.now) + 86400 + 1
    assert again.day_block(limits) is None


def test_promised_calls_count_against_the_day(tmp_path):
    ledger, clock = ledger_at(tmp_path)
    limits = Limits("p", per_day=5)
    call(ledger, limits)
    assert ledger.day_block(limits, pending=3) is None
    assert ledger.day_block(limits, pending=4) == \
        "daily quota of p reached: 1/5 with 4 more promised to running tasks, resets at 00:00 UTC (in 12 h 0 min)"


def test_a_pause_holds_every_caller(tmp_path):
    ledger, clock = ledger_at(tmp_path)
    limits = Limits("p", per_second=100)
    start = clock.now
    ledger.pause("p", 2.5)
    assert call(ledger, limits) >= start + 2.5


def test_an_exhausted_provider_waits_for_the_next_day(tmp_path):
    ledger, clock = ledger_at(tmp_path)
    ledger.exhaust("p", "HTTP 429: daily quota exceeded")
    assert ledger.day_block(Limits("p")) == \
        "daily quota of p reached (HTTP 429: daily quota exceeded), resets at 00:00 UTC (in 12 h 0 min)"
    assert ledger.day_block(Limits("other")) is None


def test_reset_text_counts_down_to_midnight_utc():
    noon = datetime(2026, 11, 30, 23, 30, tzinfo=UTC).timestamp()
    assert reset_text(noon) == "resets at 00:00 UTC (in 0 h 30 min)"


def test_retry_after_seconds_or_http_date():
    now = time.time()
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True),
                               now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def _hammer(root: str, count: int) -> None:
    ledger = CallLedger(root)
    limits = Limits("shared", per_second=10)
    for _ in range(count):
        slot = ledger.acquire(limits, "x")
        ledger.release(slot, "200")


def test_processes_share_the_limit(tmp_path):
    """Four real processes reserving at once: the ledger's times never hold 11 in one second."""
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_hammer, args=(str(tmp_path), 6)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    rows = CallLedger(tmp_path).conn.execute("SELECT sent FROM calls ORDER BY sent").fetchall()
    sent = [r[0] for r in rows]
    assert len(sent) == 24
    assert most_in_window(sent, 1.0) <= 10
