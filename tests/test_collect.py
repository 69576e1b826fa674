"""One complete poll of an account (AccountFetcher.fetch_snapshot): the request plan,
counted by the simulator, and the records it keeps."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from exporter.collect import AccountFetcher
from exporter.config import AccountConfig, Selector
from exporter.metrics import render_engagement
from exporter.pinpointe import PinpointeClient, PollError
from exporter.simulator import SimAccount, Simulator
from tests.conftest import account_settings

StartSimulator = Callable[..., Simulator]
TOKEN = "tok-collect-3e9d"


def account_for(sim: Simulator, username: str = "demo", **overrides: Any) -> AccountConfig:
    return account_settings(sim, TOKEN, name=username, username=username, timeout=10, **overrides)


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
    """The estimate counted against max_exposition_size is at least the rendered series and
    not much more; a bound below it fails the poll before it ends, with the key named."""
    sim = simulator(SimAccount(token=TOKEN, autoresponders=300, sends_per_autoresponder=4))
    account = account_for(sim, groupings=("autoresponder", "send"), page_size=100)
    client = PinpointeClient(account)
    try:
        snapshot = AccountFetcher(account, client).fetch_snapshot()
        rendered = sum(len(chunk.data) for chunk in render_engagement("demo", snapshot).values())
        estimate = sum(
            record.exposition_bytes("demo")
            for group in snapshot.groupings
            for record in group.records
        )
        assert rendered <= estimate <= 1.25 * rendered, (rendered, estimate)
        requests_before = sim.request_count("demo")
        small = replace(account, max_exposition_size=estimate // 2)
        with pytest.raises(PollError) as raised:
            AccountFetcher(small, client).fetch_snapshot()
        assert raised.value.reason == "invalid_response"
        assert "max_exposition_size" in raised.value.message
        # it stopped at the page that crossed the bound, not after the whole poll
        assert sim.request_count("demo") - requests_before < requests_before
    finally:
        client.close()
