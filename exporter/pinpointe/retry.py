"""The retry policy of the Pinpointe client: which answers are retried, how long an
inline Retry-After may be, and urllib3's Retry reporting every attempt and stopping
at the poll's deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

from urllib3.util.retry import Retry

from exporter.pinpointe.deadline import POLL_TIMEOUT, current

RETRY_STATUSES = frozenset((429, 502, 503, 504))
RETRY_AFTER_INLINE_MAX = 10.0


class CountingRetry(Retry):
    """urllib3 Retry that reports every attempt's outcome and refuses long Retry-After waits."""

    on_attempt: Callable[[str], None] | None = None

    def new(self, **kw: Any) -> CountingRetry:
        retry: CountingRetry = super().new(**kw)
        retry.on_attempt = self.on_attempt
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # urllib3 asks this once for every response it receives.
        if self.on_attempt is not None:
            self.on_attempt(str(status_code))
        return super().is_retry(method, status_code, has_retry_after)

    def get_retry_after(self, response: Any) -> float | None:
        # Parsed here rather than by urllib3, which caps it at its own 6 hours and raises on
        # junk: an unparseable Retry-After is ignored, not a failed poll.
        seconds = parse_retry_after(response.headers.get("Retry-After"))
        if seconds is not None and seconds > RETRY_AFTER_INLINE_MAX:
            raise RetryAfterTooLong(seconds, int(getattr(response, "status", 0) or 0))
        return seconds

    def sleep(self, response: Any = None) -> None:
        # An inline wait (Retry-After or backoff) that would pass the poll's deadline ends
        # the poll now rather than holding its slot past poll_timeout.
        guard = current()
        if guard is not None and guard.poll_deadline is not None:
            wait = self.get_retry_after(response) if response is not None else None
            if wait is None:
                wait = self.get_backoff_time()
            if time.monotonic() + wait >= guard.poll_deadline:
                guard.expire(POLL_TIMEOUT)
                raise DeadlineHit()
        super().sleep(response)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> CountingRetry:
        # Called for every failed attempt; responses were already counted by is_retry.
        if error is not None and self.on_attempt is not None:
            self.on_attempt("error")
        guard = current()
        if guard is not None and guard.fired is not None:
            raise DeadlineHit()  # no retry once a deadline has cut the attempt
        retry: CountingRetry = super().increment(method, url, response, error, _pool, _stacktrace)
        return retry


class RetryAfterTooLong(Exception):
    def __init__(self, seconds: float, status: int) -> None:
        super().__init__(f"Retry-After {seconds:.0f}s")
        self.seconds = seconds
        self.status = status


class DeadlineHit(Exception):
    """An attempt was cut by its Guard; the Guard says which bound."""


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) < 16 else 1e15  # longer than any cap
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
