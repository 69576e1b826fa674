"""One polling loop per account: schedule, poll, publish, back off.

A poll publishes new engagement samples only when every page of every grouping
succeeded; a failed poll leaves the previous samples in place until ``stale_after``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.collector.diagnose import Diagnosis
from exporter.collector.fetch import AccountFetcher
from exporter.config import AccountConfig
from exporter.exposition import Chunks, HealthFacts, Publisher, render_engagement, render_health
from exporter.pinpointe import PinpointeClient, PollError
from exporter.reasons import Reason
from exporter.snapshot import Snapshot

log = logging.getLogger("exporter.poller")

JITTER = 0.05
FIRST_RETRY_FRACTION = 1 / 32
MIN_RETRY = 1.0


def backoff_delay(interval: float, failures: int, retry_after: float | None = None) -> float:
    """Delay before the next attempt after ``failures`` consecutive failures (>= 1)."""
    first = max(MIN_RETRY, interval * FIRST_RETRY_FRACTION)
    delay: float = min(interval, first * 2.0 ** min(failures - 1, 32))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


@dataclass(frozen=True)
class Clock:
    """Where a poller reads the time and draws its jitter; tests pass fake ones."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    uniform: Callable[[float, float], float] = random.uniform


SYSTEM_CLOCK = Clock()


@dataclass(frozen=True)
class Published:
    """What the health metrics need of the published snapshot; its records are not kept."""

    records: Mapping[str, int]
    skipped_values: Mapping[str, int]
    truncated_labels: Mapping[str, int]
    unmapped_fields: frozenset[str]

    @classmethod
    def of(cls, snapshot: Snapshot) -> Published:
        return cls(
            records={g.grouping: len(g.records) for g in snapshot.groupings},
            skipped_values={g.grouping: g.skipped_values for g in snapshot.groupings},
            truncated_labels={g.grouping: g.truncated_labels for g in snapshot.groupings},
            unmapped_fields=snapshot.unmapped_fields,
        )


class AccountPoller:
    """Polls one account; the only writer of that account's state."""

    def __init__(
        self,
        account: AccountConfig,
        store: Publisher,
        slots: threading.Semaphore,
        stop: threading.Event,
        clock: Clock = SYSTEM_CLOCK,
        fetch: Callable[[], Snapshot] | None = None,
    ) -> None:
        """``fetch`` replaces the Pinpointe requests, for tests of the schedule alone."""
        self.account = account
        self.store = store
        self.slots = slots
        self.stop = stop
        self.clock = clock
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.client = PinpointeClient(account, on_request=self._count_request)
        self.diagnosis = Diagnosis(account, self.client)
        self.fetch = fetch or self.diagnosis.probing(
            AccountFetcher(account, self.client).fetch_snapshot
        )
        self.failures = 0
        self.last_ok: bool | None = None
        self.last_success: float | None = None
        self.last_success_monotonic: float | None = None
        self.last_duration: float | None = None
        self.published: Published | None = None
        # For the status page: (wall time, reason, message) of the last failed poll, the
        # pages of the last successful one, the next poll (monotonic); diagnoses are in
        # self.diagnosis.
        self.last_failure: tuple[float, str, str] | None = None
        self.last_pages: int | None = None
        self.next_poll: float | None = None
        self.retrying = True  # False for --once: a failure is then final
        self.store.update(account.name, render_health(self._facts()), attempted=False)

    def inherit(self, previous: AccountPoller) -> None:
        """Carry on from the poller this one replaces (a reloaded account): its counters,
        its last success and its published data stay until this poller's first poll."""
        self.requests.update(previous.requests)
        self.errors.update(previous.errors)
        self.last_ok = previous.last_ok
        self.last_success = previous.last_success
        self.last_success_monotonic = previous.last_success_monotonic
        self.last_duration = previous.last_duration
        self.published = previous.published
        self.last_failure = previous.last_failure
        self.last_pages = previous.last_pages
        self.store.update(self.account.name, render_health(self._facts()), attempted=False)

    def _count_request(self, code: str) -> None:
        self.requests[code] += 1

    def run(self) -> None:
        """The thread: do what is due, sleep until the next thing is due, until stopped."""
        interval = self.account.poll_interval
        next_poll = self.clock.monotonic() + self.clock.uniform(0, min(1.0, interval * JITTER))
        while not self.stop.is_set():
            self.next_poll = next_poll
            try:
                next_poll, wake = self.step(next_poll)
            except Exception:  # the loop must outlive any bug
                log.exception(
                    "polling loop error: this is a bug in pinpointe-exporter, please report it",
                    extra={"fields": {"account": self.account.name}},
                )
                next_poll = self.clock.monotonic() + interval
                wake = self.clock.monotonic() + min(interval, 60.0)
            self.next_poll = next_poll
            # Waking at least daily costs nothing and keeps any wait within what wait() takes.
            self.stop.wait(min(max(0.0, wake - self.clock.monotonic()), 86_400.0))
        self.client.close()

    def step(self, next_poll: float) -> tuple[float, float]:
        """Poll or withdraw stale data, whichever is due now, without waiting.

        Returns the time of the next poll and the time to wake up for whatever is due
        next (that poll, or the withdrawal of data older than ``stale_after``).
        """
        now = self.clock.monotonic()
        if now >= next_poll:
            delay = self.poll_once()
            # After a success the interval runs from the start of the poll (a steady
            # cadence); after a failure the backoff and any Retry-After run from its
            # end, i.e. from Pinpointe's last answer.
            next_poll = (now if self.last_ok else self.clock.monotonic()) + delay
        else:
            deadline = self._stale_deadline()
            if deadline is not None and now >= deadline:
                self._drop_stale()
        deadline = self._stale_deadline()
        return next_poll, next_poll if deadline is None else min(next_poll, deadline)

    def poll_once(self) -> float:
        """Poll now; publish the outcome; return the delay before the next poll."""
        while not self.slots.acquire(timeout=0.5):
            if self.stop.is_set():
                return 0.0
        try:
            started = self.clock.monotonic()
            try:
                snapshot = self.fetch()
                engagement = render_engagement(self.account.name, snapshot)
            except PollError as error:
                self.last_duration = self.clock.monotonic() - started
                return self._failed(error)
            except Exception as error:  # a bug must not kill the loop
                self.last_duration = self.clock.monotonic() - started
                log.exception(
                    "poll failed on an unexpected error: this is a bug in pinpointe-exporter, "
                    "please report it with this log line",
                    extra={"fields": {"account": self.account.name}},
                )
                return self._failed(
                    PollError(Reason.INVALID_RESPONSE, f"internal error: {type(error).__name__}")
                )
            self.last_duration = self.clock.monotonic() - started
            self._succeeded(snapshot, engagement)
            return self.account.poll_interval * self.clock.uniform(1 - JITTER, 1 + JITTER)
        finally:
            self.slots.release()

    def _succeeded(self, snapshot: Snapshot, engagement: Chunks) -> None:
        self.failures = 0
        self.last_ok = True
        self.last_success = self.clock.wall()
        self.last_success_monotonic = self.clock.monotonic()
        self.published = Published.of(snapshot)
        self.last_pages = snapshot.pages
        self.store.update(self.account.name, render_health(self._facts()), engagement)
        fields = {
            "account": self.account.name,
            "records": snapshot.record_count,
            "pages": snapshot.pages,
            "duration_seconds": round(self.last_duration or 0.0, 3),
        }
        log.info("poll succeeded", extra={"fields": fields})
        self.diagnosis.check_figures(snapshot)
        for warning in snapshot.warnings:
            log.warning(warning, extra={"fields": {"account": self.account.name}})
        if snapshot.unmapped_fields:
            log.debug(
                "numeric fields not mapped to a metric (see field_map)",
                extra={
                    "fields": {
                        "account": self.account.name,
                        "fields": ",".join(sorted(snapshot.unmapped_fields)),
                    }
                },
            )

    def _failed(self, error: PollError) -> float:
        self.failures += 1
        self.last_ok = False
        self.errors[error.reason] += 1
        delay = backoff_delay(self.account.poll_interval, self.failures, error.retry_after)
        stale = self._is_stale()
        withdrawn = stale and self.published is not None
        if stale:
            self.published = None
        self.last_failure = (self.clock.wall(), str(error.reason), error.message)
        self.store.update(self.account.name, render_health(self._facts()), {} if stale else None)
        fields: dict[str, object] = {
            "account": self.account.name,
            "reason": error.reason,
            "consecutive_failures": self.failures,
        }
        if self.retrying:
            fields["next_attempt_in_seconds"] = round(delay, 1)
            fields["serving"] = "nothing" if self.published is None else "previous data"
        log.error(error.message, extra={"fields": fields})
        if withdrawn:
            self._log_withdrawn()
        return delay

    def _stale_deadline(self) -> float | None:
        if self.published is None or self.last_ok or self.last_success_monotonic is None:
            return None
        return self.last_success_monotonic + self.account.stale_after

    def _is_stale(self) -> bool:
        return (
            self.last_success_monotonic is not None
            and self.clock.monotonic() - self.last_success_monotonic >= self.account.stale_after
        )

    def _drop_stale(self) -> None:
        self.published = None
        self.store.update(self.account.name, render_health(self._facts()), {})
        self._log_withdrawn()

    def _log_withdrawn(self) -> None:
        log.warning(
            "no successful poll within stale_after: engagement series withdrawn until the next "
            "successful poll",
            extra={"fields": {"account": self.account.name}},
        )

    def _facts(self) -> HealthFacts:
        published = self.published
        return HealthFacts(
            account=self.account.name,
            poll_interval=self.account.poll_interval,
            poll_timeout=self.account.poll_timeout,
            groupings=self.account.groupings,
            attempted=self.last_ok is not None,
            up=bool(self.last_ok),
            last_success=self.last_success,
            poll_duration=self.last_duration,
            errors=dict(self.errors),
            requests=dict(self.requests),
            records=published.records if published else {},
            skipped_values=published.skipped_values if published else {},
            truncated_labels=published.truncated_labels if published else {},
            unmapped_fields=published.unmapped_fields if published else frozenset(),
        )


class Pollers:
    """All account loops, each on its own thread, sharing a bounded number of poll slots."""

    def __init__(
        self, accounts: tuple[AccountConfig, ...], store: Publisher, concurrency: int
    ) -> None:
        self.stop = threading.Event()
        slots = threading.Semaphore(concurrency)
        self.pollers = [AccountPoller(a, store, slots, self.stop) for a in accounts]
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for poller in self.pollers:
            thread = threading.Thread(
                target=poller.run, name=f"poll-{poller.account.name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def poll_all_once(self) -> bool:
        """Poll every account once, concurrently within the slots; True if all succeeded."""
        for poller in self.pollers:
            poller.retrying = False
        threads = [threading.Thread(target=p.poll_once, daemon=True) for p in self.pollers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return all(p.last_ok for p in self.pollers)

    def shutdown(self, timeout: float = 4.0) -> None:
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
