"""Poll scheduling: exponential backoff capped at the interval, Retry-After respected."""

from __future__ import annotations

import pytest

from exporter.poller import backoff_delay


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 9.375), (2, 18.75), (3, 37.5), (4, 75.0), (5, 150.0), (6, 300.0), (7, 300.0), (99, 300.0)],
)
def test_backoff_doubles_up_to_the_poll_interval(failures: int, delay: float) -> None:
    assert backoff_delay(300.0, failures) == delay


def test_backoff_never_below_one_second() -> None:
    assert [backoff_delay(5.0, n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_retry_after_wins_over_a_shorter_backoff() -> None:
    assert backoff_delay(300.0, 1, retry_after=120.0) == 120.0
    assert backoff_delay(300.0, 6, retry_after=120.0) == 300.0
    assert backoff_delay(60.0, 1, retry_after=600.0) == 600.0
