"""A hostile Pinpointe against one exporter with the default bounds: memory, time, slots.

Every account's first page is an attack (gzip bombs, a ``gzip, gzip`` bomb, object bombs
with and without page_size, a giant label, pages that never end), or its whole poll is
(6,000 records with 1000-character names, every page within its bound). One poll slot
(``max_concurrency: 1``) is shared by all of them and by one healthy account. The proof is
the exporter process's peak RSS (VmHWM), its threads and descriptors, and each account's
outcome; never a timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from exporter.simulator import SimAccount, Simulator
from tests.conftest import (
    ExporterProcess,
    account_config,
    labels,
    process_usage,
    spawn_exporter,
    wait_for,
)

TOKEN = "tok-hostile-8e21b"
PEAK_RSS_BOUND = 512 << 20  # issue 13: with default settings, no answer exceeds this

# account -> (fault, fault params, account settings beside the defaults)
ATTACKS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "gzip_bomb": ("gzip_bomb", {"bytes": 256 << 20}, {}),
    "gzip_gzip_bomb": ("gzip_bomb", {"bytes": 1 << 30, "layers": 2}, {}),
    "object_bomb": ("object_bomb", {"bytes": 64 << 20}, {}),
    "object_bomb_flat": ("object_bomb", {"bytes": 64 << 20}, {"page_size": 0}),
    "gzip_bomb_flat": ("gzip_bomb", {"bytes": 256 << 20}, {"page_size": 0}),
    # just inside the flat bound: short strings, the costliest values once parsed
    "string_bomb_flat": ("object_bomb", {"bytes": 8_000_000, "item": '"ab"'}, {"page_size": 0}),
    # the same page again and again: poll_timeout ends it (not max_exposition_size)
    "endless": ("pagination_endless", {}, {"max_exposition_size": "1GiB"}),
    "giant_label_flat": ("giant_labels", {"length": 4_000_000}, {"page_size": 0}),
    # every page within its bound, the whole poll far over what /metrics can hold
    "long_names": ("long_names", {"length": 1000}, {"page_size": 1000}),
}
# autoresponders of an account beside the 150 of every other one
LARGE_ACCOUNTS = {"long_names": 6_000}
HEALTHY = "healthy"

DEFAULT_BOUND = (
    "page 1 of grouping autoresponder is larger than 1.6MiB (the bound from page_size 100 x "
    "max_record_size 16KiB; raise max_record_size if the records really are that large)"
)
FLAT_BOUND = (
    "page 1 of grouping autoresponder is larger than 8MiB (the bound from max_page_size 8MiB; "
    "raise max_page_size if the records really are that large)"
)
FAILURES = {
    "gzip_bomb": ("invalid_response", DEFAULT_BOUND),
    "gzip_gzip_bomb": ("invalid_response", DEFAULT_BOUND),
    "object_bomb": ("invalid_response", DEFAULT_BOUND),
    "object_bomb_flat": ("invalid_response", FLAT_BOUND),
    "gzip_bomb_flat": ("invalid_response", FLAT_BOUND),
    "string_bomb_flat": ("invalid_response", "data[0] is a string, not a record"),
    "long_names": (
        "invalid_response",
        "the records of this poll would take more than 64MiB on /metrics; raise "
        "max_exposition_size if the account really has that many autoresponders and sends",
    ),
    "endless": (
        "timeout",
        "the poll of account endless did not finish within poll_timeout (3s); it stopped at page ",
    ),
}


@dataclass
class Attacked:
    exporter: ExporterProcess
    sim: Simulator


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attacked]:
    names = [*ATTACKS, HEALTHY]
    sim = Simulator(
        [
            SimAccount(username=n, token=TOKEN, autoresponders=LARGE_ACCOUNTS.get(n, 150))
            for n in names
        ]
    ).start()
    for name, (fault, params, _) in ATTACKS.items():
        sim.set_fault(name, fault, **params)
    config = {
        "poll_timeout": "3s",
        "max_concurrency": 1,
        "accounts": [
            account_config(
                sim, name=n, username=n, token=TOKEN, **(ATTACKS[n][2] if n in ATTACKS else {})
            )
            for n in names
        ],
    }
    handle = spawn_exporter(
        tmp_path_factory.mktemp("hostile"),
        config,
        ready=lambda h: h.get("/-/healthy").status_code == 200,
    )
    try:
        # Ready once every account's first poll has ended: the endless account holds the
        # only slot for at most poll_timeout, so the others' polls are not held back longer.
        wait_for(lambda: handle.get("/-/ready").status_code == 200, what="every first poll")
        yield Attacked(handle, sim)
    finally:
        handle.stop()
        sim.stop()


@pytest.mark.parametrize("name", list(FAILURES))
def test_each_attack_fails_its_poll_with_a_message_naming_the_bound(
    attacked: Attacked, name: str
) -> None:
    reason, message = FAILURES[name]
    samples = attacked.exporter.samples()
    assert samples[("pinpointe_up", labels(account=name))] == 0
    assert samples[("pinpointe_poll_errors_total", labels(account=name, reason=reason))] == 1
    lines = [
        line
        for line in attacked.exporter.logs().splitlines()
        if f" account={name} " in line and f" reason={reason} " in line
    ]
    assert len(lines) == 1 and message in lines[0], lines


def test_the_healthy_account_was_polled_despite_the_slow_one(attacked: Attacked) -> None:
    samples = attacked.exporter.samples()
    assert samples[("pinpointe_up", labels(account=HEALTHY))] == 1
    assert samples[("pinpointe_records", labels(account=HEALTHY, grouping="autoresponder"))] == 150


def test_a_giant_label_is_published_truncated(attacked: Attacked) -> None:
    samples = attacked.exporter.samples()
    account = "giant_label_flat"
    assert samples[("pinpointe_up", labels(account=account))] == 1
    truncated = labels(account=account, grouping="autoresponder")
    assert samples[("pinpointe_truncated_label_values", truncated)] == 1
    longest = max(len(line) for line in attacked.exporter.get().text.splitlines())
    assert longest < 1200


def test_peak_memory_threads_and_descriptors_stay_bounded(attacked: Attacked) -> None:
    usage = process_usage(attacked.exporter.process.pid)
    print(f"exporter after every attack: {usage}")  # the figures, with pytest -s
    assert usage.peak_rss < PEAK_RSS_BOUND, usage
    accounts = len(ATTACKS) + 1
    assert usage.threads < 2 * accounts + 20, usage
    assert usage.fds < accounts + 40, usage
