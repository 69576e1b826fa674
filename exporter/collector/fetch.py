"""One complete poll of one account: every grouping, every page, into a Snapshot.

A Snapshot exists only when everything succeeded; any PollError propagates and
nothing partial is returned. Records are validated, de-duplicated and filtered here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from exporter.collector.fields import FieldMapper, Labels
from exporter.config import AccountConfig, Selector
from exporter.config.units import format_size
from exporter.pinpointe import PinpointeClient, PollError
from exporter.reasons import Reason
from exporter.snapshot import GroupingData, Record, Snapshot

MAX_PROBLEMS_REPORTED = 5
# pinpointe_unmapped_field_info series per account at most: a server putting ids in
# field names must not create unbounded series.
MAX_UNMAPPED_FIELDS = 100


class AccountFetcher:
    """Plans the requests for an account and turns the answers into a Snapshot.

    With several configured autoresponders it first tries one "all" request chain of
    at most K pages and filters locally; only when that is not enough does it send
    one request per autoresponder, and it remembers which way was cheaper.
    """

    def __init__(self, account: AccountConfig, client: PinpointeClient) -> None:
        self.account = account
        self.client = client
        labels = Labels(account.max_label_length, account.secret_forms)
        self.mapper = FieldMapper(account.field_map, labels)
        self._all_pages: dict[str, int] = {}

    def fetch_snapshot(self) -> Snapshot:
        groupings: list[GroupingData] = []
        unmapped: set[str] = set()
        warnings: list[str] = []
        pages = duplicates = 0
        budget = _PollBudget(self.account.name, self.account.max_exposition_size)
        self.client.begin_poll()
        for grouping in self.account.groupings:
            batch = _Batch(self.mapper, budget, per_send=grouping == "send")
            pages += self._fetch(grouping, batch, warnings)
            unmapped.update(batch.unmapped)
            if len(unmapped) > MAX_UNMAPPED_FIELDS:
                unmapped = set(sorted(unmapped)[:MAX_UNMAPPED_FIELDS])
            if batch.invalid:
                warnings.append(
                    f"grouping {grouping}: skipped {batch.invalid} records ("
                    + "; ".join(sorted(set(batch.problems)))
                    + ")"
                )
            if batch.truncated:
                warnings.extend(batch.truncation_warnings(grouping, self.account.max_label_length))
            records = self._select(batch.records, grouping, warnings)
            unique, dropped = _deduplicate(records)
            duplicates += dropped
            if batch.per_send:
                unique = _newest_sends(unique, self.account.max_sends_per_autoresponder)
            budget.publish(unique)
            groupings.append(
                GroupingData(grouping, tuple(unique), batch.skipped, len(batch.truncated))
            )
        if duplicates:
            warnings.append(f"{duplicates} duplicate records were served and counted once")
        return Snapshot(
            groupings=tuple(groupings),
            unmapped_fields=frozenset(unmapped),
            pages=pages,
            warnings=tuple(warnings),
        )

    def _fetch(self, grouping: str, batch: _Batch, warnings: list[str]) -> int:
        """Fetch one grouping into ``batch``; returns the number of pages requested."""
        selectors = self.account.autoresponders
        if not selectors:
            result = self.client.fetch(grouping, batch.add)
            warnings.extend(result.warnings)
            return result.pages
        pages = 0
        if len(selectors) > 1 and self._all_pages.get(grouping, 0) < len(selectors):
            probe = _Batch(self.mapper, batch.budget, batch.per_send)
            result = self.client.fetch(grouping, probe.add, page_budget=len(selectors))
            pages += result.pages
            if result.complete:
                self._all_pages[grouping] = result.pages
                batch.absorb(probe)
                warnings.extend(result.warnings)
                return pages
            batch.budget.release(probe.held)  # fetched again, one autoresponder at a time
            self._all_pages[grouping] = len(selectors)
        for selector in selectors:
            result = self.client.fetch(grouping, batch.add, selector)
            pages += result.pages
            warnings.extend(result.warnings)
        return pages

    def _select(self, records: list[Record], grouping: str, warnings: list[str]) -> list[Record]:
        selectors = self.account.autoresponders
        if not selectors:
            return records
        wanted_ids = {str(s.id) for s in selectors if s.id is not None}
        wanted_names = {s.name for s in selectors if s.name is not None}
        chosen = [
            r
            for r in records
            if r.autoresponder_id in wanted_ids or r.autoresponder_name in wanted_names
        ]
        missing = _missing(selectors, chosen)
        if missing and grouping == "autoresponder":
            warnings.append(
                "configured autoresponders not found in the account: "
                + ", ".join(s.describe() for s in missing)
            )
        return chosen


class _PollBudget:
    """max_exposition_size, applied twice. While the pages arrive: what the fetched records
    take in memory, so that many pages, each within its own bound, cannot add up to more
    than memory holds (a record held costs far less than its series rendered, so records
    that selection, de-duplication or max_sends_per_autoresponder drop later do not count
    as published). Once a grouping is complete: what the records kept will put on
    /metrics, every grouping together, before anything is rendered."""

    def __init__(self, account: str, bound: int) -> None:
        self.account = account
        self.bound = bound
        self.held = 0
        self.published = 0

    def hold(self, record: Record) -> int:
        size = record.memory_bytes()
        self.held += size
        if self.held > self.bound:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"the records fetched in this poll take more than {format_size(self.bound)} "
                f"of memory; {_RAISE_IT}",
            )
        return size

    def release(self, size: int) -> None:
        self.held -= size

    def publish(self, records: Iterable[Record]) -> None:
        self.published += sum(record.exposition_bytes(self.account) for record in records)
        if self.published > self.bound:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"the records of this poll would take more than {format_size(self.bound)} "
                f"on /metrics; {_RAISE_IT}",
            )


_RAISE_IT = "raise max_exposition_size if the account really has that many autoresponders and sends"


class _Batch:
    """Normalises raw records page by page as they arrive."""

    def __init__(self, mapper: FieldMapper, budget: _PollBudget, per_send: bool) -> None:
        self.mapper = mapper
        self.budget = budget
        self.held = 0  # bytes of memory its records hold, as the budget counts them
        self.per_send = per_send
        self.records: list[Record] = []
        self.unmapped: set[str] = set()
        self.skipped = 0
        self.invalid = 0
        self.problems: list[str] = []
        # (record identity, labels truncated), one per record with a truncated label value
        self.truncated: list[tuple[str, tuple[str, ...]]] = []

    def add(self, raw_records: tuple[Any, ...]) -> None:
        valid = 0
        page_problems: set[str] = set()
        for item in raw_records:
            result = self.mapper.normalise(item, self.per_send)
            self.skipped += result.skipped_values
            if result.unmapped:
                self.unmapped.update(result.unmapped)
            if result.record is not None:
                self.held += self.budget.hold(result.record)
                self.records.append(result.record)
                valid += 1
                if result.truncated:
                    self.truncated.append((result.record.shown(), result.truncated))
                continue
            self.invalid += 1
            if result.problem:
                page_problems.add(result.problem)
                if len(self.problems) < MAX_PROBLEMS_REPORTED:
                    self.problems.append(result.problem)
        if raw_records and not valid:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"a page served {len(raw_records)} records and none could be used ("
                + "; ".join(sorted(page_problems))
                + "); check that api_url points at Pinpointe's apijson.php",
            )

    def truncation_warnings(self, grouping: str, limit: int) -> list[str]:
        """One warning per record whose label values were cut (the first few of them)."""
        warnings = [
            f"grouping {grouping}: record {identity[:40]!r}: {', '.join(labels)} longer than "
            f"max_label_length ({limit} characters) truncated, ending in …[truncated]"
            for identity, labels in self.truncated[:MAX_PROBLEMS_REPORTED]
        ]
        if len(self.truncated) > MAX_PROBLEMS_REPORTED:
            warnings.append(
                f"grouping {grouping}: {len(self.truncated) - MAX_PROBLEMS_REPORTED} more "
                "records with truncated label values"
            )
        return warnings

    def absorb(self, other: _Batch) -> None:
        self.records.extend(other.records)
        self.held += other.held
        self.unmapped.update(other.unmapped)
        self.skipped += other.skipped
        self.invalid += other.invalid
        self.truncated.extend(other.truncated)
        self.problems.extend(other.problems[: MAX_PROBLEMS_REPORTED - len(self.problems)])


def _missing(selectors: Iterable[Selector], records: list[Record]) -> list[Selector]:
    ids = {r.autoresponder_id for r in records}
    names = {r.autoresponder_name for r in records}
    return [s for s in selectors if str(s.id) not in ids and s.name not in names]


def _deduplicate(records: list[Record]) -> tuple[list[Record], int]:
    seen: set[tuple[str, ...]] = set()
    unique: list[Record] = []
    for record in records:
        key = record.key()
        if key not in seen:
            seen.add(key)
            unique.append(record)
    return unique, len(records) - len(unique)


def _newest_sends(records: list[Record], keep: int) -> list[Record]:
    if keep == 0:
        return records
    by_autoresponder: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        by_autoresponder[record.autoresponder_key()].append(record)
    kept: set[int] = set()
    for sends in by_autoresponder.values():
        if len(sends) > keep:
            sends = sorted(sends, key=_send_age_key, reverse=True)[:keep]
        kept.update(id(record) for record in sends)
    return [record for record in records if id(record) in kept]


def _send_age_key(record: Record) -> tuple[float, int, str]:
    """Newest last: by start time, then by the send id read as a decimal number when it is
    one (ASCII digits, compared by length then text, so no id has to parse), then by text."""
    send_id = record.send_id or ""
    digits = len(send_id) if send_id.isascii() and send_id.isdigit() else -1
    start = record.start_time if record.start_time is not None else -1.0
    return (start, digits, send_id)
