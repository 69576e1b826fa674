"""What the status page says: a reading of every account's poller, and of the reloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exporter.collector import AccountPoller


@dataclass(frozen=True)
class Failure:
    timestamp: float
    reason: str
    message: str


@dataclass(frozen=True)
class AccountStatus:
    """What the status page says about one account (times are Unix seconds)."""

    name: str
    health: str  # up | down | stale | never_polled
    api_url: str
    request_type: str
    groupings: tuple[str, ...]
    selection: tuple[str, ...]  # empty: all autoresponders
    poll_interval_seconds: float
    last_success_timestamp: float | None
    last_failure: Failure | None
    records: Mapping[str, int]
    pages: int | None
    poll_duration_seconds: float | None
    next_poll_timestamp: float | None
    stale_at_timestamp: float | None
    unmapped_fields: tuple[str, ...]
    hints: tuple[str, ...]


def account_status(poller: AccountPoller) -> AccountStatus:
    """A consistent-enough reading of a poller's state (plain attribute reads, no lock)."""
    account = poller.account
    wall, monotonic = poller.clock.wall(), poller.clock.monotonic()

    def to_wall(moment: float | None) -> float | None:
        return None if moment is None else wall + (moment - monotonic)

    published = poller.published
    if poller.last_ok is None:
        health = "never_polled"
    elif poller.last_ok:
        health = "up"
    else:
        health = "down" if published is not None or poller.last_success is None else "stale"
    stale_at = None
    if published is not None and poller.last_success_monotonic is not None:
        stale_at = to_wall(poller.last_success_monotonic + account.stale_after)
    failure = poller.last_failure
    return AccountStatus(
        name=account.name,
        health=health,
        api_url=account.shown_url,
        request_type=poller.client.request_type,
        groupings=account.groupings,
        selection=tuple(s.describe() for s in account.autoresponders),
        poll_interval_seconds=account.poll_interval,
        last_success_timestamp=poller.last_success,
        last_failure=None if failure is None else Failure(*failure),
        records=dict(published.records) if published else {},
        pages=poller.last_pages,
        poll_duration_seconds=poller.last_duration,
        next_poll_timestamp=to_wall(poller.next_poll),
        stale_at_timestamp=stale_at,
        unmapped_fields=tuple(sorted(published.unmapped_fields)) if published else (),
        hints=poller.diagnosis.hints,
    )


@dataclass(frozen=True)
class Facts:
    """Everything the views show, as of ``now``."""

    now: float
    demo: bool
    config_file: str | None
    reload_successful: bool
    last_reload_success_timestamp: float
    reload_error: str | None  # why the last reload failed, while it is the last
    accounts: tuple[AccountStatus, ...]
