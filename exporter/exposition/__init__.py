"""The exposition: snapshots turned into the bytes /metrics serves.

``families`` names every metric family with its HELP and TYPE, ``render`` renders an
account's samples once per poll (text and OpenMetrics share the bytes), ``gzipjoin``
compresses each family once and joins the pieces into one gzip body, ``store`` holds
every account's latest rendering and publishes them whole, and ``process`` adds the
client library's process and Python samples at most once a second.
"""

from exporter.exposition.families import ALL_FAMILIES, Family
from exporter.exposition.process import runtime_metrics
from exporter.exposition.render import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Chunks,
    Exposition,
    HealthFacts,
    render_engagement,
    render_health,
    render_reload,
)
from exporter.exposition.store import Publisher, Store

__all__ = [
    "ALL_FAMILIES",
    "OPENMETRICS_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "Chunks",
    "Exposition",
    "Family",
    "HealthFacts",
    "Publisher",
    "Store",
    "render_engagement",
    "render_health",
    "render_reload",
    "runtime_metrics",
]
