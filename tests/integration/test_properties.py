"""Property-based tests (hypothesis) against the simulator and promtool: pagination stops
where the rules say, any name renders valid exposition, one odd record never fails a poll."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector import AccountFetcher
from exporter.collector.fields import FieldMapper, clean_label
from exporter.config import AccountConfig, Secret
from exporter.exposition import Exposition, render_engagement
from exporter.pinpointe import PinpointeClient, PollError
from exporter.simulator import SimAccount, Simulator
from exporter.snapshot import GroupingData, Snapshot
from tests.conftest import promtool_check
from tests.strategies import json_values

PAGE_SIZE = 5


MAX_PAGES = 6


next_values = (
    st.none()
    | st.integers(min_value=-2, max_value=40)
    | st.sampled_from(["5", " 10 ", "x", "", 2.5, 10.0, True, [], {}, "9" * 5000, "²", 2**60])
)


scripts = st.lists(
    st.tuples(st.integers(min_value=0, max_value=PAGE_SIZE + 1), next_values),
    min_size=1,
    max_size=MAX_PAGES + 2,
)


def expected_outcome(script: list[tuple[int, Any]]) -> tuple[str, int, int]:
    """The stop rules, independently: ("ok", "pagination" or "invalid_response", pages,
    records)."""
    cursor = records = 0
    steps = [*script, (0, 0)]  # past the script the simulator answers 0 records, next 0
    for pages, (count, raw_next) in enumerate(steps, start=1):
        # the body is parsed first (a bad next), then the page is checked (too many records)
        ends = raw_next is None or raw_next == ""
        if not ends:
            if isinstance(raw_next, bool):
                return "pagination", pages, records
            if isinstance(raw_next, float) and raw_next.is_integer():
                raw_next = int(raw_next)
            digits = isinstance(raw_next, str) and raw_next.strip().isascii()
            if digits and raw_next.strip().isdigit() and len(raw_next.strip()) <= 16:
                raw_next = int(raw_next.strip())
            if not isinstance(raw_next, int) or not 0 <= raw_next <= 2**53:
                return "pagination", pages, records
        if count > PAGE_SIZE:
            return "invalid_response", pages, records  # more than limit asked for
        records += count
        if ends:
            return "ok", pages, records
        if raw_next == 0:
            return "ok", pages, records
        if raw_next <= cursor:
            return "pagination", pages, records
        if count < PAGE_SIZE:
            return "ok", pages, records  # a short page ends it (with a warning)
        if pages >= MAX_PAGES:
            return "pagination", pages, records
        cursor = raw_next
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def paging_sim() -> Iterator[Simulator]:
    sim = Simulator([SimAccount(token="tok-prop", autoresponders=PAGE_SIZE + 1)]).start()
    yield sim
    sim.stop()


@given(scripts)
@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_pagination_stops_exactly_where_the_rules_say(
    paging_sim: Simulator, script: list[tuple[int, Any]]
) -> None:
    paging_sim.set_fault("demo", "scripted", pages=[list(page) for page in script])
    paging_sim.reset_counts()
    account = AccountConfig(
        name="acme",
        api_url=paging_sim.url,
        username="demo",
        usertoken=Secret("tok-prop"),
        poll_interval=60,
        timeout=60,  # never meant to expire: every outcome here is the script's
        stale_after=600,
        page_size=PAGE_SIZE,
    )
    received: list[dict[str, Any]] = []
    client = PinpointeClient(account, max_pages=MAX_PAGES)
    outcome, pages, records = expected_outcome(script)
    try:
        result = client.fetch("autoresponder", received.extend)
    except PollError as error:
        assert (error.reason, paging_sim.request_count("demo")) == (outcome, pages), script
    else:
        got = ("ok", result.pages, len(received))
        assert got == (outcome, pages, records), script
        assert paging_sim.request_count("demo") == pages
    finally:
        client.close()
    sent = [request.cursor for request in paging_sim.request_log("demo")]
    assert sent == sorted(set(sent)), "the cursor sent never repeats or goes back"


names = st.text(max_size=40) | st.sampled_from(
    ['"', "\\", "\n", "\\n", '\\"', "\ud800", "a\udfffb", "🎉" * 5, "\u2028", "\x00", "\r\n", " "]
)


ids = st.integers(min_value=0, max_value=10**12) | st.text(min_size=1, max_size=10).filter(
    lambda text: bool(text.strip())
)


def exposition_of(records: list[dict[str, Any]]) -> str:
    mapper = FieldMapper()
    normalised = [mapper.normalise(raw, False).record for raw in records]
    kept: dict[tuple[str, ...], Any] = {}
    for record in normalised:  # one record per identity, the first, as the collector keeps
        if record is not None:
            kept.setdefault(record.key(), record)
    snapshot = Snapshot(
        groupings=(GroupingData("autoresponder", tuple(kept.values()), 0),),
        unmapped_fields=frozenset(),
        pages=1,
        warnings=(),
    )
    chunks = render_engagement("acme", snapshot)
    return b"".join(Exposition([chunks]).parts(False)).decode("utf-8")


@given(st.lists(st.tuples(ids, names), min_size=1, max_size=6, unique_by=lambda p: str(p[0])))
@settings(max_examples=60, deadline=None)
def test_any_unicode_name_renders_valid_exposition(pairs: list[tuple[Any, str]]) -> None:
    records = [
        {"autoresponderid": ar_id, "autorespondername": name, "sendsize": "3"}
        for ar_id, name in pairs
    ]
    text = exposition_of(records)
    parsed = {
        sample.labels["autoresponder_id"]: sample.labels["autoresponder_name"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name == "pinpointe_autoresponder_recipients"
    }
    expected: dict[str, str] = {}
    for ar_id, name in pairs:
        expected.setdefault(clean_label(str(ar_id).strip()), clean_label(name.strip()))
    for label_id, name in expected.items():
        assert parsed.get(label_id) == name, (label_id, name, text)
    check = promtool_check(text)
    assert check.returncode == 0, (check.stdout, check.stderr, text)


RECORD_FIELDS = [
    "autoresponderid",
    "id",
    "autorespondername",
    "name",
    "statid",
    "stat_id",
    "sendid",
    "starttime",
    "finishtime",
    "sendsize",
    "emailopens",
    "bouncecount_hard",
    "feedbackloopcount",
]


ODD_SCALARS = [
    *("²", "٣", "1e400", "-0", "NaN", "nan", "Infinity", " 7 ", "0x10", "9" * 5000, ""),
    *(float("nan"), float("inf"), -1, 2**64, 10**300, 1.5, 1e300, -0.0, True, [], {}),
]


odd_values = json_values | st.sampled_from(ODD_SCALARS)


ODD_BASE = {"autoresponderid": "1", "autorespondername": "Series 1", "statid": "199"}


odd_records = st.builds(
    lambda changed, dropped: {
        key: value for key, value in {**ODD_BASE, **changed}.items() if key not in dropped
    },
    st.dictionaries(st.sampled_from(RECORD_FIELDS), odd_values, max_size=6),
    st.sets(st.sampled_from(list(ODD_BASE))),
)


GOOD_SENDS = 4


def good_records() -> list[dict[str, Any]]:
    """Two autoresponders, each with GOOD_SENDS sends (more than max_sends keeps)."""
    return [
        {
            "autoresponderid": str(ar),
            "autorespondername": f"Series {ar}",
            "statid": str(ar * 100 + send),
            "starttime": str(1_700_000_000 + send),
            "sendsize": "10",
            "emailopens": "4",
        }
        for ar in (1, 2)
        for send in range(GOOD_SENDS)
    ]


@pytest.fixture(scope="module")
def records_sim() -> Iterator[Simulator]:
    sim = Simulator([SimAccount(token="tok-odd-record")]).start()
    yield sim
    sim.stop()


@given(odd_records, st.integers(min_value=0, max_value=2 * GOOD_SENDS))
@example({**ODD_BASE, "statid": "²"}, 0)  # str.isdigit() but not int()
@example({**ODD_BASE, "statid": 10**300, "autoresponderid": float("nan")}, 3)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_one_odd_record_never_fails_a_poll(
    records_sim: Simulator, odd: dict[str, Any], position: int
) -> None:
    """Whatever one record holds, beside good ones in both groupings (with more sends per
    autoresponder than max_sends_per_autoresponder keeps, so sends are ordered), the poll
    succeeds, every good autoresponder is published, and the exposition is valid."""
    records = good_records()
    records.insert(position, odd)
    records_sim.set_fault("demo", "records", records=records)
    account = AccountConfig(
        name="acme",
        api_url=records_sim.url,
        username="demo",
        usertoken=Secret("tok-odd-record"),
        poll_interval=60,
        timeout=5,
        stale_after=600,
        page_size=0,
        groupings=("autoresponder", "send"),
        max_sends_per_autoresponder=2,
        max_label_length=64,
    )
    client = PinpointeClient(account)
    try:
        snapshot = AccountFetcher(account, client).fetch_snapshot()
    finally:
        client.close()
    by_grouping = {group.grouping: group.records for group in snapshot.groupings}
    ids = {record.autoresponder_id for record in by_grouping["autoresponder"]}
    assert {"1", "2"} <= ids
    sends = [r for r in by_grouping["send"] if r.autoresponder_id in ("1", "2")]
    assert len([r for r in sends if r.autoresponder_id == "1"]) <= 2
    text = b"".join(Exposition([render_engagement("acme", snapshot)]).parts(False)).decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert "pinpointe_autoresponder_recipients" in families
