"""shard_of and the shard gauges: every account in exactly one shard, whatever the count."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.collector import export_shard, shard_of

COUNTS = range(1, 6)


ACCOUNTS = [f"account-{i:02d}" for i in range(50)]


@pytest.mark.parametrize("count", COUNTS)
def test_every_account_in_exactly_one_shard_function(count: int) -> None:
    shards = Counter(shard_of(name, count) for name in ACCOUNTS)
    assert sum(shards.values()) == len(ACCOUNTS)
    assert set(shards) == set(range(count)), "every shard gets some of 50 accounts"


_SHARD_GAUGE = re.compile(r"^pinpointe_exporter_shard_(index|count) (\S+)$", re.MULTILINE)


def test_exporting_the_shard_again_replaces_it() -> None:
    registry = CollectorRegistry()
    export_shard(1, 3, registry)
    export_shard(0, 2, registry)  # a second start in one process must not raise
    text = generate_latest(registry).decode()
    assert _SHARD_GAUGE.findall(text) == [("index", "0.0"), ("count", "2.0")]
    export_shard(4, 5, CollectorRegistry())
    assert "pinpointe_exporter_shard" not in generate_latest(registry).decode()
