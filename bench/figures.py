"""What the benchmark measures: one cell per way, size, encoding and scraper count; the
exporter's polls; and the run's results."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WAYS = ("exporter", "client_python", "client_python_cached", "pushgateway", "nginx")
SLOW_SCRAPE = 0.5  # seconds; slower ways are measured with a Python loop instead of wrk
CELL_BUDGET = 60.0  # seconds; an 8-scraper cell estimated to take longer is not run
PAGE_SIZE = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout + summary.errors.status
  io.write(string.format("BENCH %d %d %d %d %d\\n", summary.requests,
    latency:percentile(50), latency:percentile(99), errors, summary.bytes))
end
"""


@dataclass
class Cell:
    way: str
    size: int
    gzip: bool
    scrapers: int
    p50: float | None = None  # seconds
    p99: float | None = None
    requests: int = 0
    tool: str = ""
    skipped: str = ""
    body_bytes: int = 0  # the body one scrape receives


@dataclass
class PollFigures:
    size: int
    samples: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    idle_p50: float = 0.0
    idle_p99: float = 0.0
    during_p50: float = 0.0
    during_p99: float = 0.0
    during_requests: int = 0
    plain_mb: float = 0.0
    gzip_mb: float = 0.0


@dataclass
class Results:
    machine: dict[str, str]
    cells: list[Cell] = field(default_factory=list)
    polls: list[PollFigures] = field(default_factory=list)
    rss_mb: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
