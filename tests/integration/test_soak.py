"""Soak: thousands of polls with random faults; memory, threads and file descriptors stay flat.

SOAK_POLLS polls (default 2000) after a warm-up of WARM_UP_POLLS: counted, not timed, so
a slow machine makes the soak longer, never shorter (about a minute on an idle one).
The exporter is a real process; its resident memory, threads and open file descriptors
are read from /proc at two quiet moments (no fault switching, no scraping, and every
account's last poll a success): after the warm-up and at the end.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from exporter.simulator import SimAccount, Simulator
from tests.conftest import (
    PATIENCE,
    ExporterProcess,
    parse_samples,
    proc_stats,
    spawn_exporter,
    wait_for,
)

TOKEN = "tok-soak-61d2"
ACCOUNTS = 10
WARM_UP_POLLS = 400
RUN_POLLS = int(os.environ.get("SOAK_POLLS", "2000"))
# A hang-stopper for a phase: polls go at about 50 a second on an idle machine.
PHASE_PATIENCE = 900.0
# Faults that answer quickly (the slow ones only lower the poll rate), None most often.
FAULT_CHOICES: list[tuple[str | None, dict[str, object]]] = [
    (None, {}),
    (None, {}),
    (None, {}),
    (None, {}),
    ("auth", {}),
    ("auth_200", {}),
    ("failed_200", {}),
    ("errormessage_list", {}),
    ("echo_token", {}),
    ("http_500", {}),
    ("malformed_json", {}),
    ("html_page", {}),
    ("truncated", {}),
    ("reset", {}),
    ("cut_connection", {}),
    ("fail_later_pages", {}),
    ("pagination_repeat", {}),
    ("pagination_backwards", {}),
    ("short_pages", {}),
    ("no_pagination", {}),
    ("duplicates", {}),
    ("bad_values", {}),
    ("odd_names", {}),
    ("latency", {"seconds": 0.05}),
    ("big_response", {"bytes": 200_000}),
]


def background(work: Callable[[], None], stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            work()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def steady_threads(pid: int) -> int:
    """The fewest threads over 20 readings. Each poll attempt in flight has a short-lived
    deadline timer thread, so a single reading may catch several; a leaked thread stays."""
    counts = []
    for _ in range(20):
        counts.append(proc_stats(pid)[1])
        time.sleep(0.05)
    return min(counts)


def polls_logged(handle: ExporterProcess) -> int:
    """Polls the exporter has finished: one log line each, a success or a failure."""
    logs = handle.logs()
    return logs.count('msg="poll succeeded"') + logs.count(" reason=")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_soak_with_random_faults(tmp_path: Path) -> None:
    names = [f"soak{i}" for i in range(ACCOUNTS)]
    sim = Simulator(
        [
            SimAccount(username=n, token=TOKEN, autoresponders=6, sends_per_autoresponder=2)
            for n in names
        ]
    ).start()
    config = {
        "poll_interval": "200ms",
        "stale_after": "5s",
        "max_concurrency": ACCOUNTS,
        "accounts": [
            {
                "name": n,
                "api_url": sim.url,
                "username": n,
                "usertoken": TOKEN,
                "page_size": 4,
                "groupings": ["autoresponder", "send"] if i % 2 else ["autoresponder"],
            }
            for i, n in enumerate(names)
        ],
    }
    handle = spawn_exporter(tmp_path, config)
    pid = handle.process.pid
    rng = random.Random(4)
    scrapes = [0]

    def switch_faults() -> None:
        name = rng.choice(names)
        fault, params = rng.choice(FAULT_CHOICES)
        sim.set_fault(name, fault, **params)
        time.sleep(0.05)

    def scrape() -> None:
        gzip = {"Accept-Encoding": "gzip"} if scrapes[0] % 2 else {}
        assert requests.get(handle.url + "/metrics", headers=gzip, timeout=10).status_code == 200
        scrapes[0] += 1
        time.sleep(0.05)

    def run_phase(polls: int) -> None:
        """Switch faults and scrape until the exporter has finished ``polls`` more polls,
        then clear the faults and wait until every account's last poll succeeded."""
        target = polls_logged(handle) + polls
        stop = threading.Event()
        threads = [background(switch_faults, stop), background(scrape, stop)]
        try:
            wait_for(
                lambda: polls_logged(handle) >= target,
                timeout=PHASE_PATIENCE,
                what=f"{polls} polls",
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(PATIENCE)
        for name in names:
            sim.set_fault(name, None)
        wait_for(
            lambda: all(v == 1 for (n, _), v in handle.samples().items() if n == "pinpointe_up"),
            what="a successful poll of every account",
        )

    try:
        run_phase(WARM_UP_POLLS)
        requests_before = sim.request_count()
        polls_before = polls_logged(handle)
        rss_0, _, fds_0 = proc_stats(pid)
        threads_0 = steady_threads(pid)
        run_phase(RUN_POLLS)
        rss_1, _, fds_1 = proc_stats(pid)
        threads_1 = steady_threads(pid)
        polled = sim.request_count() - requests_before
        run_polls = polls_logged(handle) - polls_before
        assert handle.process.poll() is None
        samples = parse_samples(handle.get().text)
    finally:
        handle.stop()
        sim.stop()

    logs = handle.logs()
    summary = (
        f"{run_polls} polls, {polled} requests, {scrapes[0]} scrapes; rss {rss_0 / 2**20:.1f} -> "
        f"{rss_1 / 2**20:.1f} MiB, threads {threads_0} -> {threads_1}, fds {fds_0} -> {fds_1}"
    )
    print(summary)
    assert run_polls >= RUN_POLLS, summary
    assert rss_1 - rss_0 < 10 * 2**20, summary
    # Slack for deadline timers of polls in flight (at most one per account), beyond
    # what steady_threads filters out; a per-poll leak would add thousands.
    assert threads_1 <= threads_0 + 2 + ACCOUNTS, summary
    assert fds_1 <= fds_0 + 2, summary
    errors = sum(v for (n, _), v in samples.items() if n == "pinpointe_poll_errors_total")
    assert errors >= 100, summary  # the faults did bite
    assert "Traceback" not in logs and "poll failed unexpectedly" not in logs
    assert TOKEN not in logs
