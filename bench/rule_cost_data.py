"""The synthetic exporter of bench/rule_cost.py: its series, as OpenMetrics blocks for
`promtool tsdb create-blocks-from openmetrics` (the past) and as an exposition served
over HTTP (the present), so that Prometheus sees one continuous history.

Every autoresponder grows like a healthy one (about 2,900 recipients a day, every rate
far below its alert threshold), so no alert fires and no annotation template runs:
what is measured is the rules' reading and arithmetic, as in a quiet production week.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from exporter.exposition.families import ENGAGEMENT

STEP = 60  # seconds between samples: the scrape interval of prometheus/prometheus.yml
AUTORESPONDERS_PER_ACCOUNT = 100
# growth per 5 minutes (the exporter's default poll interval) of each engagement series
GROWTH = {
    "recipients": 10.0,
    "opens": 4.0,
    "unique_opens": 3.0,
    "clicks": 2.0,
    "unique_clicks": 1.0,
    "forwards": 0.1,
    "unsubscribes": 0.05,
    "bounces_soft": 0.1,
    "bounces_hard": 0.05,
    "bounces_unknown": 0.01,
    "complaints": 0.005,
}
# per account: (metric, extra labels, value)
HEALTH = (
    ("pinpointe_up", "", 1.0),
    ("pinpointe_last_success_timestamp_seconds", "", None),  # None: the sample's time
    ("pinpointe_poll_duration_seconds", "", 4.0),
    ("pinpointe_poll_interval_seconds", "", 300.0),
    ("pinpointe_poll_timeout_seconds", "", 300.0),
    ("pinpointe_records", 'grouping="autoresponder"', float(AUTORESPONDERS_PER_ACCOUNT)),
    ("pinpointe_skipped_values", 'grouping="autoresponder"', 0.0),
    ("pinpointe_truncated_label_values", 'grouping="autoresponder"', 0.0),
    ("pinpointe_poll_errors_total", 'reason="timeout"', 2.0),
    ("pinpointe_api_requests_total", 'code="200"', 1000.0),
)
EXPORTER = (
    ("pinpointe_exporter_build_info", 'version="bench"', 1.0),
    ("pinpointe_exporter_config_last_reload_successful", "", 1.0),
)


@dataclass(frozen=True)
class Fleet:
    """N autoresponders in accounts of 100, scraped as one target."""

    autoresponders: int
    instance: str
    job: str = "pinpointe"

    @property
    def accounts(self) -> int:
        return max(1, math.ceil(self.autoresponders / AUTORESPONDERS_PER_ACCOUNT))

    def target(self) -> str:
        return f'job="{self.job}",instance="{self.instance}"'

    def engagement(self) -> Iterator[tuple[str, str, float]]:
        """(metric, labels without job and instance, growth per 5 minutes)."""
        for key, (suffix, extra, _) in ENGAGEMENT.items():
            for ar in range(self.autoresponders):
                account = ar // AUTORESPONDERS_PER_ACCOUNT
                labels = (
                    f'account="a{account}",autoresponder_id="{ar}",autoresponder_name="AR {ar}"'
                )
                yield (
                    f"pinpointe_autoresponder_{suffix}",
                    labels + (f",{extra}" if extra else ""),
                    GROWTH[key],
                )

    def health(self) -> Iterator[tuple[str, str, float | None]]:
        for account in range(self.accounts):
            for metric, extra, value in HEALTH:
                labels = f'account="a{account}"' + (f",{extra}" if extra else "")
                yield metric, labels, value
        for metric, labels, value in EXPORTER:
            yield metric, labels, value


def value_at(growth: float, ts: int) -> float:
    return float(1000 + math.floor(ts // 300 * growth))


def exposition(fleet: Fleet, ts: int) -> str:
    """What the synthetic exporter serves at ``ts`` (no job or instance: the scrape adds them)."""
    lines = [
        f"{metric}{{{labels}}} {value_at(growth, ts)}"
        for metric, labels, growth in fleet.engagement()
    ]
    for metric, labels, value in fleet.health():
        lines.append(f"{metric}{{{labels}}} {float(ts) if value is None else value}")
    return "\n".join(lines) + "\n"


def _ticks(start: int, end: int, every: int) -> range:
    return range(start + (-start) % every, end, every)


def openmetrics_window(fleet: Fleet, start: int, end: int, recorded: dict[str, int]) -> str:
    """The samples of [start, end): every exporter series each STEP, and every recorded
    series of ``recorded`` (name -> group interval in seconds) each interval, valued 0
    (a rule reading one a week back then compares against nothing and stays silent)."""
    out: list[str] = []
    target = fleet.target()
    stamps = _ticks(start, end, STEP)
    family = ""
    for metric, labels, growth in fleet.engagement():
        if metric != family:
            out.append(f"# TYPE {metric} gauge")
            family = metric
        prefix = f"{metric}{{{target},{labels}}} "
        out.extend(f"{prefix}{value_at(growth, ts)} {ts}" for ts in stamps)
    by_metric: dict[str, list[tuple[str, float | None]]] = {}
    for metric, labels, value in fleet.health():
        by_metric.setdefault(metric, []).append((labels, value))
    for metric, series in by_metric.items():
        counter = metric.endswith("_total")
        out.append(f"# TYPE {metric.removesuffix('_total')} {'counter' if counter else 'gauge'}")
        for labels, value in series:
            prefix = f"{metric}{{{','.join(filter(None, (target, labels)))}}} "
            out.extend(f"{prefix}{float(ts) if value is None else value} {ts}" for ts in stamps)
    for record, interval in recorded.items():
        ticks = _ticks(start, end, interval)
        if not ticks:
            continue
        out.append(f"# TYPE {record} gauge")
        for labels in _record_labels(fleet, record):
            out.extend(f"{record}{{{labels}}} 0 {ts}" for ts in ticks)
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _record_labels(fleet: Fleet, record: str) -> Iterator[str]:
    if record == "account:pinpointe_autoresponder_series:count":
        # per account, the series of each figure (metric, bounce type) it has
        for account in range(fleet.accounts):
            for suffix, extra, _ in ENGAGEMENT.values():
                metric = f'metric="pinpointe_autoresponder_{suffix}"'
                yield ",".join(
                    filter(None, (f'job="{fleet.job}",account="a{account}"', metric, extra))
                )
    elif record.startswith("account_autoresponder:"):
        for ar in range(fleet.autoresponders):
            account = ar // AUTORESPONDERS_PER_ACCOUNT
            yield f'account="a{account}",autoresponder_id="{ar}",autoresponder_name="AR {ar}"'
    elif record.startswith("account:"):
        for account in range(fleet.accounts):
            yield f'account="a{account}"'
