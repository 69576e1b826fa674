"""The poller's state machine, driven by a fake clock: every test runs in milliseconds.

A fake fetch stands in for the Pinpointe requests (those are proven against the
simulator in test_client.py, test_faults.py and test_politeness.py); here the poller
meets scripted outcomes, and the tests read what it published through the Store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from exporter.collector import FieldMapper
from exporter.collector.poller import JITTER, AccountPoller, Clock, backoff_delay
from exporter.config import AccountConfig, Secret
from exporter.exposition import Store
from exporter.pinpointe import PollError
from exporter.reasons import Reason
from exporter.snapshot import GroupingData, Record, Snapshot
from tests.conftest import Labels, labels, parse_samples

INTERVAL = 300.0
STALE_AFTER = 700.0
START = 1000.0  # monotonic seconds at the first poll
WALL = 1_700_000_000.0  # the wall clock at monotonic 0


class FakeClock:
    """Monotonic and wall time that move only when a test moves them; no jitter."""

    def __init__(self) -> None:
        self.now = START
        self.jitter = 0.5  # where in the jitter range uniform() lands: 0 low end, 1 high end

    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.now, wall=lambda: WALL + self.now, uniform=self.uniform)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.jitter


Outcome = Snapshot | PollError | Exception


def snapshot(opens: int) -> Snapshot:
    raw = {"autoresponderid": 7, "autorespondername": "Welcome", "emailopens": opens}
    record = FieldMapper().normalise(raw, per_send=False).record
    assert isinstance(record, Record)
    return Snapshot((GroupingData("autoresponder", (record,), 0),), frozenset(), 1, ())


class Harness:
    """One AccountPoller on a fake clock, with a script of poll outcomes."""

    def __init__(self, *outcomes: Outcome, duration: float = 0.0, stale_after: float = STALE_AFTER):
        self.fake = FakeClock()
        self.outcomes = list(outcomes)
        self.duration = duration  # fake seconds each poll takes
        self.polls: list[float] = []  # fake monotonic time at which each poll started
        self.store = Store(["acme"])
        account = AccountConfig(
            name="acme",
            api_url="http://127.0.0.1:9/apijson.php",
            username="demo",
            usertoken=Secret("tok-poller-unit"),
            poll_interval=INTERVAL,
            timeout=5,
            stale_after=stale_after,
        )
        self.stop = threading.Event()
        self.poller = AccountPoller(
            account,
            self.store,
            threading.Semaphore(1),
            self.stop,
            clock=self.fake.clock(),
            fetch=self.fetch,
        )
        self.next_poll = START

    def fetch(self) -> Snapshot:
        self.polls.append(self.fake.now)
        self.fake.now += self.duration
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def run_until(self, end: float) -> None:
        """Step the poller as its thread would, jumping the clock to each wake-up time."""
        while True:
            self.next_poll, wake = self.poller.step(self.next_poll)
            if wake > end:
                self.fake.now = max(self.fake.now, end)
                return
            self.fake.now = max(self.fake.now, wake)

    def run_polls(self, count: int) -> None:
        while len(self.polls) < count:
            self.run_until(self.next_poll)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.polls, self.polls[1:], strict=False)]

    def samples(self) -> dict[tuple[str, Labels], float]:
        return parse_samples(b"".join(self.store.exposition.parts(False)).decode())

    def opens(self) -> float | None:
        key = labels(account="acme", autoresponder_id="7", autoresponder_name="Welcome")
        return self.samples().get(("pinpointe_autoresponder_opens", key))

    def value(self, name: str, **extra: str) -> float | None:
        return self.samples().get((name, labels(account="acme", **extra)))

    def close(self) -> None:
        self.poller.client.close()


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(*outcomes: Outcome, **kw: float) -> Harness:
        made.append(Harness(*outcomes, **kw))
        return made[-1]

    yield make
    for each in made:
        each.close()


def auth_error() -> PollError:
    return PollError(Reason.AUTH, "Pinpointe rejected the credentials")


def test_a_successful_poll_publishes_and_the_next_runs_an_interval_after_its_start(
    harness: Callable[..., Harness],
) -> None:
    h = harness(snapshot(5), snapshot(6), snapshot(9), duration=2.0)
    h.run_polls(1)
    assert h.opens() == 5
    assert h.value("pinpointe_up") == 1
    assert h.value("pinpointe_last_success_timestamp_seconds") == WALL + START + 2.0
    assert h.value("pinpointe_poll_duration_seconds") == 2.0
    assert h.value("pinpointe_records", grouping="autoresponder") == 1
    h.run_polls(3)
    assert h.polls == [START, START + INTERVAL, START + 2 * INTERVAL]
    assert h.opens() == 9


@pytest.mark.parametrize("jitter", [0.0, 1.0])
def test_the_interval_is_jittered_by_five_percent(
    harness: Callable[..., Harness], jitter: float
) -> None:
    h = harness(snapshot(5), snapshot(6))
    h.fake.jitter = jitter
    h.run_polls(2)
    assert h.gaps() == [pytest.approx(INTERVAL * (1 - JITTER + 2 * JITTER * jitter))]


def test_a_failed_poll_keeps_the_previous_data(
    harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    h = harness(snapshot(5), auth_error())
    h.run_polls(2)
    assert h.opens() == 5
    assert h.value("pinpointe_up") == 0
    assert h.value("pinpointe_poll_errors_total", reason="auth") == 1
    assert h.value("pinpointe_last_success_timestamp_seconds") == WALL + START
    failure = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failure] == ["Pinpointe rejected the credentials"]
    assert failure[0].fields["serving"] == "previous data"  # type: ignore[attr-defined]
    assert failure[0].fields["next_attempt_in_seconds"] == 9.4  # type: ignore[attr-defined]


def test_data_is_withdrawn_stale_after_the_last_success_even_between_polls(
    harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    # A Retry-After of an hour: no poll is due when the data goes stale.
    h = harness(snapshot(5), PollError(Reason.RATE_LIMITED, "slow down", retry_after=3600.0))
    h.run_polls(2)
    h.run_until(START + STALE_AFTER - 0.001)
    assert h.opens() == 5
    assert "withdrawn" not in caplog.text
    h.run_until(START + STALE_AFTER)
    assert h.opens() is None
    assert h.value("pinpointe_up") == 0
    assert h.value("pinpointe_records", grouping="autoresponder") == 0
    assert h.value("pinpointe_last_success_timestamp_seconds") == WALL + START
    assert (
        "no successful poll within stale_after: engagement series withdrawn until the next "
        "successful poll" in caplog.text
    )
    assert h.polls == [START, START + INTERVAL]


def test_a_failure_after_stale_after_withdraws_at_once(
    harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    h = harness(snapshot(5), auth_error(), stale_after=INTERVAL)
    h.run_polls(2)
    assert h.opens() is None
    assert h.value("pinpointe_up") == 0
    failure = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure[0].fields["serving"] == "nothing"  # type: ignore[attr-defined]
    # Withdrawn by the failed poll itself, not between polls: said once all the same.
    withdrawn = [r.getMessage() for r in caplog.records if "withdrawn" in r.getMessage()]
    assert withdrawn == [
        "no successful poll within stale_after: engagement series withdrawn until the next "
        "successful poll"
    ]


def test_recovery_publishes_and_restarts_the_backoff(harness: Callable[..., Harness]) -> None:
    h = harness(
        snapshot(5), *[auth_error()] * 6, snapshot(8), auth_error(), auth_error(), snapshot(9)
    )
    h.run_polls(7)
    h.run_until(START + STALE_AFTER)
    assert h.opens() is None
    h.run_polls(8)
    assert h.opens() == 8
    assert h.value("pinpointe_up") == 1
    assert h.value("pinpointe_poll_errors_total", reason="auth") == 6
    h.run_polls(11)
    assert h.gaps()[7:] == [INTERVAL, backoff_delay(INTERVAL, 1), backoff_delay(INTERVAL, 2)]
    assert h.opens() == 9


def test_backoff_doubles_from_the_end_of_each_failed_poll_up_to_the_interval(
    harness: Callable[..., Harness],
) -> None:
    h = harness(*[auth_error()] * 8, duration=1.0)
    h.run_polls(8)
    assert h.gaps() == [1.0 + d for d in (9.375, 18.75, 37.5, 75.0, 150.0, 300.0, 300.0)]
    assert h.value("pinpointe_poll_errors_total", reason="auth") == 8


def test_a_retry_after_longer_than_the_interval_is_waited_out(
    harness: Callable[..., Harness],
) -> None:
    h = harness(
        snapshot(5), PollError(Reason.RATE_LIMITED, "slow down", retry_after=1000.0), snapshot(6)
    )
    h.duration = 2.0
    h.run_polls(3)
    assert h.gaps() == [INTERVAL, 2.0 + 1000.0]
    assert h.opens() == 6
    assert h.value("pinpointe_poll_errors_total", reason="rate_limited") == 1


def test_readiness_waits_for_the_first_attempt_not_for_success(
    harness: Callable[..., Harness],
) -> None:
    h = harness(auth_error(), snapshot(5))
    assert h.store.pending() == ["acme"]
    assert h.value("pinpointe_up") is None
    assert h.value("pinpointe_poll_interval_seconds") == INTERVAL
    h.run_polls(1)
    assert h.store.pending() == []
    assert h.value("pinpointe_up") == 0
    assert h.opens() is None


def test_a_bug_in_a_poll_is_a_failed_poll_not_a_dead_loop(
    harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    h = harness(snapshot(5), KeyError("boom"), snapshot(6))
    h.run_polls(3)
    assert h.value("pinpointe_poll_errors_total", reason="invalid_response") == 1
    assert h.opens() == 6
    assert "internal error: KeyError" in caplog.text
    assert "this is a bug in pinpointe-exporter" in caplog.text


def test_the_thread_loop_polls_after_a_jitter_below_a_second_and_stops(
    harness: Callable[..., Harness],
) -> None:
    """run() on the real Event: the fetch stops the loop, so the test never waits."""
    h = harness()
    h.fake.jitter = 1.0
    h.fake.now = 0.0
    waits: list[float] = []

    def fetch_then_stop() -> Snapshot:
        waits.append(h.fake.now)
        h.stop.set()
        return snapshot(5)

    h.poller.fetch = fetch_then_stop
    real_wait = h.stop.wait

    def wait(timeout: float | None = None) -> bool:
        h.fake.now += timeout or 0.0  # time passes as the loop sleeps
        return real_wait(0)

    h.stop.wait = wait  # type: ignore[method-assign]
    h.poller.run()
    assert waits == [1.0]  # min(1 s, 5 % of the interval) at the high end of the jitter
    assert h.opens() == 5


@pytest.mark.parametrize(
    ("interval", "failures", "retry_after", "delay"),
    [
        (300, 1, None, 9.375),
        (300, 2, None, 18.75),
        (300, 5, None, 150.0),
        (300, 6, None, 300.0),
        (300, 7, None, 300.0),
        (300, 1000, None, 300.0),
        (300, 1, 120, 120.0),
        (300, 1, 500, 500.0),
        (300, 6, 30, 300.0),
        (60, 1, 600, 600.0),
        (5, 1, None, 1.0),
        (5, 3, None, 4.0),
        (5, 4, None, 5.0),
        (10, 5, None, 10.0),
    ],
)
def test_backoff_delay(
    interval: float, failures: int, retry_after: float | None, delay: float
) -> None:
    """Doubling from 1/32 of the interval (at least 1 s), capped at it; Retry-After wins."""
    assert backoff_delay(interval, failures, retry_after) == delay
