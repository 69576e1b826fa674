"""Stable assignment of accounts to shards, so several replicas can split the work."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from prometheus_client.core import REGISTRY, CollectorRegistry, GaugeMetricFamily

_SHARD = re.compile(r"^(\d+)/(\d+)$")


def shard_of(account_name: str, count: int) -> int:
    """The shard (0-based) that polls ``account_name``; depends on nothing but the name."""
    digest = hashlib.sha256(account_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """``INDEX/COUNT`` (0-based INDEX) -> (index, count)."""
    match = _SHARD.match(text.strip())
    if match is None:
        raise ValueError(f"invalid --shard {text!r}: use INDEX/COUNT, e.g. 0/3")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ValueError(f"invalid --shard {text!r}: INDEX must be from 0 to COUNT-1")
    return index, count


class ShardCollector:
    """The shard this process serves, for alerts that spot a missing shard::

        pinpointe_exporter_shard_index 1
        pinpointe_exporter_shard_count 3

    One series each, exported only when the exporter runs with --shard.
    """

    def __init__(self, index: int, count: int) -> None:
        self.index, self.count = index, count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "pinpointe_exporter_shard_index",
            "Shard whose accounts this exporter polls: INDEX of --shard INDEX/COUNT "
            "(0-based); exported only with --shard.",
            value=self.index,
        )
        yield GaugeMetricFamily(
            "pinpointe_exporter_shard_count",
            "Number of shards the accounts are split into: COUNT of --shard INDEX/COUNT; "
            "exported only with --shard.",
            value=self.count,
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self.collect()


_exported: list[tuple[CollectorRegistry, ShardCollector]] = []


def export_shard(index: int, count: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Serve the shard gauges with the client library's metrics (replacing earlier ones)."""
    while _exported:
        old_registry, old = _exported.pop()
        old_registry.unregister(old)
    collector = ShardCollector(index, count)
    registry.register(collector)
    _exported.append((registry, collector))
