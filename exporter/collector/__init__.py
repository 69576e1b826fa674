"""The collector: one polling loop per account, each poll into a complete Snapshot.

``fields`` maps Pinpointe's record fields to metrics and checks their values,
``fetch`` plans an account's requests and gathers every page into a Snapshot,
``poller`` runs an account's loop (schedule, backoff, publish, stale data),
``fleet`` starts, keeps and stops the loops account by account, ``reload`` loads the
configuration again on request, ``diagnose`` explains a first contact that goes wrong,
and ``sharding`` splits the accounts between replicas.
"""

from exporter.collector.fetch import AccountFetcher
from exporter.collector.fields import FieldMapper, Labels
from exporter.collector.fleet import Changes, Fleet, Slots
from exporter.collector.poller import AccountPoller, Clock, Pollers
from exporter.collector.reload import RELOAD_TIMEOUT, Reloader
from exporter.collector.sharding import export_shard, parse_shard, shard_of

__all__ = [
    "RELOAD_TIMEOUT",
    "AccountFetcher",
    "AccountPoller",
    "Changes",
    "Clock",
    "FieldMapper",
    "Fleet",
    "Labels",
    "Pollers",
    "Reloader",
    "Slots",
    "export_shard",
    "parse_shard",
    "shard_of",
]
