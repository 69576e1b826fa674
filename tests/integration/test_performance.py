"""Performance behaviour of a running exporter that can be asserted as values: accounts
polled concurrently, no lock held across a poll. The request plan of one poll is in
test_collect.py, rendering once and the gzip joining in test_metrics.py and
test_gzipjoin.py; speed itself is measured in bench/, never here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from exporter.simulator import SimAccount, Simulator
from tests.conftest import (
    ExporterProcess,
    StartExporter,
    StartSimulator,
    account_config,
    run_exporter,
    wait_for,
    write_config,
)

TOKEN = "tok-perf-51c0"


def test_accounts_are_polled_concurrently_up_to_max_concurrency(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    users = [f"user{i}" for i in range(8)]
    sim = simulator(*(SimAccount(username=u, token=TOKEN, autoresponders=20) for u in users))
    for concurrency in (4, 8):
        sim.reset_counts()
        sim.peak_in_flight(reset=True)
        # 16 pages in all: held in batches of `concurrency`, released when a batch is full
        sim.hold_pages_until_in_flight(concurrency)
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
    first, later = 1_780_000_000.0, 1_780_000_000.0 + 30 * 86_400

    # The first poll's three pages are served at ``first``, every later page at ``later``:
    # the figures move on with the second poll, whenever it comes.
    def clock() -> float:
        return first if sim.request_count("demo") <= 3 else later

    sim: Simulator = simulator(SimAccount(token=TOKEN, autoresponders=30), clock=clock)
    # The second poll's first page (new figures) is answered, its second page held until
    # the test releases it.
    sim.set_fault("demo", "latency", seconds=math.inf, later_pages=True, after_requests=3)
    process = exporter(
        {
            "poll_interval": "2s",
            "timeout": "1h",  # the held page lasts until the test releases it
            "accounts": [account_config(sim, token=TOKEN, page_size=10)],
        }
    )
    before = _engagement(process)
    assert _recipients(before) == _expected(sim, first)

    wait_for(lambda: sim.request_count("demo") == 5, what="the second poll's second page")
    during = _engagement(process)
    assert sim.request_count("demo") == 5  # still held: the second poll has not ended
    assert during == before

    sim.set_fault("demo", None)  # the held page goes out, then the third
    after = wait_for(
        lambda: (s := _engagement(process)) != before and s, what="the poll to be published"
    )
    assert _recipients(after) == _expected(sim, later)
    assert _recipients(after) != _recipients(before)
