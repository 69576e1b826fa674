"""The status page as HTML: one row per account, server-rendered with inline CSS
(no JavaScript, nothing fetched from elsewhere), every value escaped."""

from __future__ import annotations

import html
import time

from exporter import __version__
from exporter.config import format_duration
from exporter.status.model import AccountStatus, Facts

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d1d1f;background:#fff}
h1{font-size:1.4rem;margin:0 0 .3rem}
nav a{margin-right:1rem}
.banner{background:#fff4ce;border:1px solid #e0b000;padding:.6rem .8rem;margin:1rem 0;
border-radius:4px;font-weight:600}
.warn{background:#fde7e9;border-color:#c4314b}
.why{font-weight:400;margin-top:.3rem;font-family:ui-monospace,monospace}
table{border-collapse:collapse;width:100%;margin-top:1rem;font-size:.9rem}
th,td{border:1px solid #d0d0d0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.health{font-weight:700;white-space:nowrap}
.up{color:#107c10}.down,.stale{color:#c4314b}.never_polled{color:#8a6d00}
.msg{max-width:28rem}
.hint td{background:#fffaf0;border-top:none}
small{color:#555}
"""

_HEALTH_LABEL = {"up": "UP", "down": "DOWN", "stale": "STALE", "never_polled": "NEVER POLLED"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(moment: float | None, now: float, missing: str = "never") -> str:
    if moment is None:
        return missing
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))
    return f"{_e(stamp)}<br><small>{_e(_relative(moment - now))}</small>"


def _relative(delta: float) -> str:
    text = _span(abs(delta))
    return f"in {text}" if delta > 0.5 else f"{text} ago" if delta < -0.5 else "now"


def _span(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60}s"
    return f"{whole // 3600}h {whole % 3600 // 60}m"


def _row(a: AccountStatus, now: float) -> str:
    failure = "none"
    if a.last_failure is not None:
        f = a.last_failure
        failure = (
            f'<b>{_e(f.reason)}</b> {_when(f.timestamp, now)}<div class="msg">{_e(f.message)}</div>'
        )
    records = ", ".join(f"{_e(g)}: {_e(n)}" for g, n in a.records.items()) or "none"
    if a.pages is not None:
        records += f"<br><small>{_e(a.pages)} pages in the last poll</small>"
    duration = "" if a.poll_duration_seconds is None else f"{a.poll_duration_seconds:.2f}s"
    stale = "no data" if a.stale_at_timestamp is None else _when(a.stale_at_timestamp, now)
    selection = ", ".join(a.selection) if a.selection else "all autoresponders"
    cells = [
        f"<b>{_e(a.name)}</b><br><small>{_e(a.api_url)}</small>",
        f'<span class="health {_e(a.health)}">{_HEALTH_LABEL[a.health]}</span>',
        _when(a.last_success_timestamp, now),
        failure,
        records,
        _e(duration),
        _when(a.next_poll_timestamp, now, "not scheduled"),
        stale,
        _e(", ".join(a.unmapped_fields) or "none"),
        f"{_e(selection)}<br><small>{_e(', '.join(a.groupings))}; request_type "
        f"{_e(a.request_type)}; every {_e(format_duration(a.poll_interval_seconds))}</small>",
    ]
    row = "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
    for hint in a.hints:
        row += f'<tr class="hint"><td></td><td colspan="9">{_e(hint)}</td></tr>'
    return row


_COLUMNS = (
    "Account",
    "Health",
    "Last success",
    "Last failure",
    "Records",
    "Poll duration",
    "Next poll",
    "Stale at",
    "Unmapped fields",
    "Selection",
)


def render_html(facts: Facts, telemetry_path: str) -> str:
    banner = ""
    if facts.demo:
        banner = (
            '<div class="banner">Demo mode: this page shows SIMULATED Pinpointe data from '
            "the built-in simulator, not a real account.</div>"
        )
    if not facts.reload_successful:
        why = "<br>".join(_e(line) for line in (facts.reload_error or "").splitlines())
        banner += (
            '<div class="banner warn">The last configuration reload failed: the previous '
            f'configuration is still in force.<div class="why">{why}</div></div>'
        )
    rows = "".join(_row(a, facts.now) for a in facts.accounts) or (
        '<tr><td colspan="10">no accounts configured</td></tr>'
    )
    header = "".join(f"<th>{_e(c)}</th>" for c in _COLUMNS)
    up = sum(a.health == "up" for a in facts.accounts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pinpointe exporter</title><style>{_CSS}</style></head>
<body>
<h1>Pinpointe exporter</h1>
<nav><a href="{_e(telemetry_path)}">Metrics</a><a href="/-/healthy">Health</a>\
<a href="/-/ready">Readiness</a><a href="/api/v1/status">Status as JSON</a>\
<a href="/config">Configuration in force</a>\
<a href="/troubleshooting">Troubleshooting</a></nav>
{banner}
<p>Accounts up: {up} of {len(facts.accounts)}. Version {_e(__version__)}. \
<small>As of {_e(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(facts.now)))}.</small></p>
<table><thead><tr>{header}</tr></thead>
<tbody>{rows}</tbody></table>
</body></html>
"""
