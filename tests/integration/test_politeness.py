"""Politeness towards Pinpointe: Retry-After is honoured, failures back off, no storms.

The simulator records when every request arrived and when its answer went out (one
monotonic clock, in this process); the assertions compare those recorded times with
each other and count requests. One exporter polls four accounts at once, each with its
own fault, so the slow waits overlap.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from exporter.collector.poller import backoff_delay
from exporter.simulator import RequestRecord, SimAccount, Simulator
from tests.conftest import ExporterProcess, account_config, labels, spawn_exporter, wait_for

TOKEN = "tok-polite-2b7e"
INLINE_RETRY_AFTER = 2  # waited inside the poll (at most RETRY_AFTER_INLINE_MAX)
LONG_RETRY_AFTER = 11  # longer than RETRY_AFTER_INLINE_MAX: the poll ends, the poller waits
BACKOFF_INTERVAL = 4.0


@dataclass
class Polite:
    sim: Simulator
    exporter: ExporterProcess


@pytest.fixture(scope="module")
def polite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polite]:
    names = ("rate_inline", "rate_long", "backoff", "storm")
    sim = Simulator([SimAccount(username=n, token=TOKEN, autoresponders=5) for n in names])
    sim.start()
    sim.set_fault("rate_inline", "rate_limited", retry_after=INLINE_RETRY_AFTER)
    sim.set_fault("rate_long", "rate_limited", retry_after=LONG_RETRY_AFTER)
    sim.set_fault("backoff", "auth")
    sim.set_fault("storm", "http_503")
    interval = {"backoff": "4s", "storm": "4s"}
    config = {
        "poll_interval": "1s",
        "stale_after": "5m",
        "max_concurrency": 4,
        "accounts": [
            account_config(
                sim,
                name=n,
                username=n,
                token=TOKEN,
                **({"poll_interval": interval[n]} if n in interval else {}),
            )
            for n in names
        ],
    }
    handle = spawn_exporter(tmp_path_factory.mktemp("polite"), config)
    yield Polite(sim, handle)
    handle.stop()
    sim.stop()


def requests_of(polite: Polite, name: str, at_least: int) -> list[RequestRecord]:
    def enough() -> list[RequestRecord] | None:
        log = polite.sim.request_log(name)
        return log if len(log) >= at_least else None

    found: list[RequestRecord] = wait_for(enough, what=f"{at_least} requests")
    return found


def too_soon_after_429(log: list[RequestRecord], seconds: float) -> list[tuple[float, float]]:
    """Pairs (429 answered, next request received) closer than ``seconds``."""
    early = []
    for current, following in itertools.pairwise(log):
        if current.status == 429:
            assert current.answered is not None
            if following.received - current.answered < seconds:
                early.append((current.answered, following.received))
    return early


def test_retry_after_is_honoured_within_a_poll(polite: Polite) -> None:
    log = requests_of(polite, "rate_inline", at_least=6)
    assert [r.status for r in log[:6]] == [429] * 6
    assert too_soon_after_429(log, INLINE_RETRY_AFTER) == []
    samples = polite.exporter.samples()
    errors = samples[
        ("pinpointe_poll_errors_total", labels(account="rate_inline", reason="rate_limited"))
    ]
    assert errors >= 1
    assert f"waiting {INLINE_RETRY_AFTER}s as asked by Retry-After" in polite.exporter.logs()


def test_a_long_retry_after_ends_the_poll_and_the_poller_waits(polite: Polite) -> None:
    log = requests_of(polite, "rate_long", at_least=2)
    assert [r.status for r in log[:2]] == [429, 429]
    assert too_soon_after_429(log, LONG_RETRY_AFTER) == []
    # one request per poll: no inline retries of a wait that long
    samples = polite.exporter.samples()
    errors = samples[
        ("pinpointe_poll_errors_total", labels(account="rate_long", reason="rate_limited"))
    ]
    sent = samples[("pinpointe_api_requests_total", labels(account="rate_long", code="429"))]
    assert sent == errors
    assert f"waiting {LONG_RETRY_AFTER}s as asked by Retry-After" in polite.exporter.logs()


def test_consecutive_failures_back_off_exponentially_up_to_the_interval(polite: Polite) -> None:
    log = requests_of(polite, "backoff", at_least=6)
    gaps = [b.received - a.received for a, b in itertools.pairwise(log)][:5]
    expected = [backoff_delay(BACKOFF_INTERVAL, n) for n in range(1, 6)]
    assert expected == [1.0, 2.0, 4.0, 4.0, 4.0]
    # each failed poll plans the backoff delay, capped at the interval instead of doubling
    # on (8 s, 16 s)...
    planned = re.findall(
        r" account=backoff reason=auth consecutive_failures=\d+ next_attempt_in_seconds=(\S+)",
        polite.exporter.logs(),
    )
    assert [float(delay) for delay in planned[:5]] == expected
    # ...and waits at least that long (measured from Pinpointe's answer, so this holds
    # however slow the machine is)
    assert [gap >= delay for gap, delay in zip(gaps, expected, strict=True)] == [True] * 5
    assert all(r.status == 401 for r in log)  # 401 is never retried inside a poll


def test_no_request_storm_on_server_errors(polite: Polite) -> None:
    """503 is retried 3 times inside a poll, then the poller backs off: 4 requests a poll."""

    def consistent() -> tuple[float, float, int] | None:
        before = polite.sim.request_count("storm")
        samples = polite.exporter.samples()
        after = polite.sim.request_count("storm")
        polls = samples[("pinpointe_poll_errors_total", labels(account="storm", reason="http"))]
        sent = samples[("pinpointe_api_requests_total", labels(account="storm", code="503"))]
        if before == after == sent and polls >= 2:
            return polls, sent, after
        return None

    polls, sent, served = wait_for(consistent, what="two whole failed polls")
    assert sent == served == 4 * polls
