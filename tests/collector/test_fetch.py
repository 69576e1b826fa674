"""One complete poll of an account (AccountFetcher.fetch_snapshot): the request plan,
counted by the simulator, and the records it keeps."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from exporter.collector import AccountFetcher, FieldMapper
from exporter.config import AccountConfig, Selector
from exporter.config.units import format_size
from exporter.exposition import render_engagement
from exporter.pinpointe import PinpointeClient, PollError
from exporter.simulator import SimAccount, Simulator
from exporter.snapshot import GroupingData, Snapshot
from tests.conftest import StartSimulator, account_settings

TOKEN = "tok-collect-3e9d"


def account_for(sim: Simulator, username: str = "demo", **overrides: Any) -> AccountConfig:
    return account_settings(sim, TOKEN, name=username, username=username, **overrides)


def test_one_request_per_page_for_every_grouping(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=234, sends_per_autoresponder=3))
    account = account_for(
        sim, groupings=("autoresponder", "send"), page_size=50, max_sends_per_autoresponder=0
    )
    client = PinpointeClient(account)
    fetcher = AccountFetcher(account, client)
    try:
        for poll in (1, 2):
            snapshot = fetcher.fetch_snapshot()
            by_grouping = {g.grouping: len(g.records) for g in snapshot.groupings}
            assert by_grouping == {"autoresponder": 234, "send": 702}
            assert sim.request_count("demo", grouping="autoresponder") == poll * math.ceil(234 / 50)
            assert sim.request_count("demo", grouping="send") == poll * math.ceil(702 / 50)
            assert snapshot.pages == 5 + 15
    finally:
        client.close()


def test_many_configured_autoresponders_are_one_all_chain_filtered_locally(
    simulator: StartSimulator,
) -> None:
    # 250 records are 3 pages; 5 configured autoresponders would be 5 requests.
    sim = simulator(SimAccount(token=TOKEN, autoresponders=250))
    wanted = (3, 99, 150, 201, 250)
    account = account_for(sim, autoresponders=tuple(Selector(id=i) for i in wanted))
    client = PinpointeClient(account)
    fetcher = AccountFetcher(account, client)
    try:
        for poll in (1, 2):
            snapshot = fetcher.fetch_snapshot()
            ids = [r.autoresponder_id for r in snapshot.groupings[0].records]
            assert ids == [str(i) for i in wanted]
            assert sim.request_count("demo") == poll * 3
    finally:
        client.close()
    assert all("autoresponderid" not in seen["details"] for seen in sim.seen)


def test_few_configured_autoresponders_are_one_request_each_after_the_first_probe(
    simulator: StartSimulator,
) -> None:
    # 1,000 records are 10 pages; 3 configured autoresponders are 3 requests.
    sim = simulator(SimAccount(token=TOKEN, autoresponders=1000))
    wanted = (7, 500, 1000)
    account = account_for(sim, autoresponders=tuple(Selector(id=i) for i in wanted))
    client = PinpointeClient(account)
    fetcher = AccountFetcher(account, client)
    try:
        first = fetcher.fetch_snapshot()
        assert [r.autoresponder_id for r in first.groupings[0].records] == ["7", "500", "1000"]
        # The first poll probes the "all" chain for at most 3 pages, then asks for each.
        assert sim.request_count("demo") == 3 + 3
        sim.reset_counts()
        second = fetcher.fetch_snapshot()
        assert [r.autoresponder_id for r in second.groupings[0].records] == ["7", "500", "1000"]
        assert sim.request_count("demo") == 3
        assert [s["details"].get("autoresponderid") for s in sim.seen] == list(wanted)
    finally:
        client.close()


def test_max_exposition_size_is_what_the_poll_would_put_on_metrics(
    simulator: StartSimulator,
) -> None:
    """Against max_exposition_size: the kept records' series once a grouping is complete
    (the estimate is at least what is rendered, and not much more), and while the pages
    arrive, what the fetched records hold in memory."""
    sim = simulator(SimAccount(token=TOKEN, autoresponders=300, sends_per_autoresponder=4))
    account = account_for(
        sim, groupings=("autoresponder", "send"), page_size=100, max_sends_per_autoresponder=1
    )
    client = PinpointeClient(account)
    try:
        snapshot = AccountFetcher(account, client).fetch_snapshot()
        assert [len(g.records) for g in snapshot.groupings] == [300, 300]
        rendered = sum(len(chunk.data) for chunk in render_engagement("demo", snapshot).values())
        estimate = sum(
            record.exposition_bytes("demo")
            for group in snapshot.groupings
            for record in group.records
        )
        assert rendered <= estimate <= 1.25 * rendered, (rendered, estimate)
        # The 900 older sends dropped by max_sends_per_autoresponder do not count.
        just_enough = replace(account, max_exposition_size=estimate)
        assert AccountFetcher(just_enough, client).fetch_snapshot().record_count == 600
        too_small = replace(account, max_exposition_size=estimate - 1)
        with pytest.raises(PollError) as raised:
            AccountFetcher(too_small, client).fetch_snapshot()
        assert raised.value.reason == "invalid_response"
        assert raised.value.message == (
            f"the records of this poll would take more than {format_size(estimate - 1)} on "
            "/metrics; "
            "raise max_exposition_size if the account really has that many autoresponders "
            "and sends"
        )
        # A bound smaller than one page of records held ends the poll at that page.
        requests_before = sim.request_count("demo")
        tiny = replace(account, max_exposition_size=8 * 1024)
        with pytest.raises(PollError) as raised:
            AccountFetcher(tiny, client).fetch_snapshot()
        assert raised.value.message.startswith(
            "the records fetched in this poll take more than 8KiB of memory; raise "
            "max_exposition_size"
        )
        assert sim.request_count("demo") - requests_before == 1
    finally:
        client.close()


def test_the_estimate_counts_the_bytes_of_escaped_utf8_label_values() -> None:
    """Names of emoji, CJK, backslashes, quotes and newlines cost more bytes than
    characters on /metrics; the estimate must not be gamed low by them."""
    mapper = FieldMapper()
    names = ["😀" * 300, "漢字" * 200, "\\" * 300, '"' * 300, "\n" * 300, "plain name"]
    records = []
    for index, name in enumerate(names):
        raw = {"autoresponderid": f"{index}😀", "autorespondername": name, "sendsize": 1}
        record = mapper.normalise({**raw, "emailopens": 1, "bouncecount_hard": 1}, False).record
        assert record is not None
        records.append(record)
    snapshot = Snapshot((GroupingData("autoresponder", tuple(records), 0),), frozenset(), 1, ())
    rendered = render_engagement("acme", snapshot)
    for record in records:
        alone = Snapshot((GroupingData("autoresponder", (record,), 0),), frozenset(), 1, ())
        size = sum(len(chunk.data) for chunk in render_engagement("acme", alone).values())
        assert size <= record.exposition_bytes("acme") <= 1.6 * size, record.autoresponder_name
    assert rendered


@pytest.mark.parametrize(
    "odd",
    [None, "x", [1, 2], 3, True, {"sendsize": "4"}],
    ids=["null", "string", "list", "number", "boolean", "no-identity"],
)
def test_an_odd_value_among_records_is_skipped_and_counted_not_the_poll(
    simulator: StartSimulator, odd: Any
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=3))
    good = [{"autoresponderid": str(n), "sendsize": str(10 * n)} for n in (1, 2)]
    sim.set_fault("demo", "records", records=[good[0], odd, good[1]])
    account = account_for(sim)
    client = PinpointeClient(account)
    try:
        snapshot = AccountFetcher(account, client).fetch_snapshot()
    finally:
        client.close()
    (grouping,) = snapshot.groupings
    assert [(r.autoresponder_id, r.values) for r in grouping.records] == [
        ("1", (("recipients", 10.0),)),
        ("2", (("recipients", 20.0),)),
    ]
    (warning,) = snapshot.warnings
    assert warning.startswith("grouping autoresponder: skipped 1 records ("), warning


def test_a_record_named_like_another_records_id_is_not_its_duplicate(
    simulator: StartSimulator,
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=3))
    records = [
        {"autoresponderid": "name:Foo", "autorespondername": "Bar", "sendsize": "1"},
        {"autorespondername": "Foo", "sendsize": "2"},
        {"autorespondername": "Foo", "sendsize": "3"},  # a duplicate: no id, the same name
    ]
    sim.set_fault("demo", "records", records=records)
    account = account_for(sim)
    client = PinpointeClient(account)
    try:
        snapshot = AccountFetcher(account, client).fetch_snapshot()
    finally:
        client.close()
    (grouping,) = snapshot.groupings
    assert [(r.autoresponder_id, r.autoresponder_name, r.values) for r in grouping.records] == [
        ("name:Foo", "Bar", (("recipients", 1.0),)),
        ("", "Foo", (("recipients", 2.0),)),
    ]
    assert snapshot.warnings == ("1 duplicate records were served and counted once",)
