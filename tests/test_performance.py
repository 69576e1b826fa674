"""Performance behaviour that can be asserted as values: request counts, concurrency, no lock
held across a poll. Rendering once and the gzip joining are in test_metrics.py and
test_gzipjoin.py; speed itself is measured in bench/, never here."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.collect import AccountFetcher
from exporter.config import AccountConfig, Selector
from exporter.pinpointe import PinpointeClient
from exporter.simulator import SimAccount, Simulator
from tests.conftest import (
    ExporterProcess,
    account_config,
    account_settings,
    run_exporter,
    wait_for,
    write_config,
)

StartSimulator = Callable[..., Simulator]
StartExporter = Callable[..., ExporterProcess]
TOKEN = "tok-perf-51c0"


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


def test_accounts_are_polled_concurrently_up_to_max_concurrency(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    users = [f"user{i}" for i in range(8)]
    sim = simulator(
        *(SimAccount(username=u, token=TOKEN, autoresponders=20, latency=0.3) for u in users)
    )
    for concurrency in (4, 8):
        sim.reset_counts()
        sim.peak_in_flight(reset=True)
        config = {
            "max_concurrency": concurrency,
            "accounts": [
                account_config(sim, name=u, username=u, token=TOKEN, page_size=10) for u in users
            ],
        }
        path = write_config(tmp_path / f"config-{concurrency}.yaml", config)
        result = run_exporter("--once", f"--config.file={path}")
        assert result.returncode == 0, result.stderr
        assert {u: sim.request_count(u) for u in users} == {u: 2 for u in users}
        assert sim.peak_in_flight() == concurrency


def _engagement(process: ExporterProcess) -> dict[Any, float]:
    return {
        key: value
        for key, value in process.samples().items()
        if key[0].startswith("pinpointe_autoresponder_")
    }


def _expected(sim: Simulator, now: float) -> dict[str, float]:
    return {str(r["autoresponderid"]): float(r["sendsize"]) for r in sim.records("demo", now=now)}


def _recipients(samples: dict[Any, float]) -> dict[str, float]:
    return {
        dict(labels)["autoresponder_id"]: value
        for (name, labels), value in samples.items()
        if name == "pinpointe_autoresponder_recipients"
    }


def test_a_scrape_during_a_poll_gets_the_previous_complete_exposition(
    simulator: StartSimulator, exporter: StartExporter
) -> None:
    moment = [1_780_000_000.0]
    sim = simulator(SimAccount(token=TOKEN, autoresponders=30), clock=lambda: moment[0])
    process = exporter(
        {
            "poll_interval": "2s",
            "accounts": [account_config(sim, token=TOKEN, page_size=10)],
        }
    )
    # The first poll is done; the next one starts about 2 s later, slowly and with new figures.
    first_moment = moment[0]
    sim.accounts["demo"].latency = 0.4
    moment[0] += 30 * 86_400
    before = _engagement(process)
    assert _recipients(before) == _expected(sim, first_moment)

    polls_so_far = sim.request_count("demo")
    wait_for(lambda: sim.request_count("demo") > polls_so_far, what="the next poll to start")
    during = _engagement(process)
    assert sim.request_count("demo") < polls_so_far + 3, "the poll ended before the scrape did"
    assert during == before

    after = wait_for(
        lambda: (s := _engagement(process)) != before and s, what="the poll to be published"
    )
    assert _recipients(after) == _expected(sim, moment[0])
    assert _recipients(after) != _recipients(before)
