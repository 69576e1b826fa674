#!/usr/bin/env python3
"""Write prometheus/tests/scenarios_*test.yml: everyday situations of autoresponders,
as the exporter reports them (a sample every 5 minutes, i.e. the default poll
interval), over two weeks, for `promtool test rules`.

    python prometheus/tests/generate_scenarios.py          # rewrite the YAML
    python prometheus/tests/generate_scenarios.py --check  # exit 1 if it differs

Each storyline is one autoresponder (its own autoresponder_id) in one promtool test,
so promtool evaluates the rules once for all of them. Day 0 is a Monday (the rules
know no calendar; only "a week earlier" matters). The expected values and alerts are
written below next to the storyline they check; tests/integration/test_rules.py fails when the
committed YAML and this script disagree. Rules are evaluated every 15 minutes (the
samples stay 5 minutes apart): a cheaper test, the same conditions.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

OUT_DIR = Path(__file__).resolve().parent
STEP = 300  # seconds between samples: the exporter's default poll_interval
HOUR = 3600
DAY = 86400
DAYS = 15  # day 0 (Monday) .. day 14 (Monday)
N = DAYS * DAY // STEP  # samples per series
EVAL = "15m"
AR_RULE = "account_autoresponder:pinpointe_autoresponder_"
ACCOUNT_RULE = "account:pinpointe_autoresponder_"

Values = list[float | None]
Rate = Callable[[int], float]  # sample index -> increment at that sample


def t(day: float, hour: float = 0, minute: float = 0) -> int:
    """Sample index of day/hour/minute."""
    return int((day * DAY + hour * HOUR + minute * 60) // STEP)


def when(day: float, hour: float = 0, minute: float = 0) -> str:
    """A promtool eval_time."""
    total = int(day * 24 * 60 + hour * 60 + minute)
    d, rest = divmod(total, 24 * 60)
    h, m = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((d, "d"), (h, "h"), (m, "m")) if v) or "0m"


def cumulative(start: float, increment: Rate, n: int = N) -> Values:
    out: Values = []
    value = start
    for i in range(n):
        value += increment(i)
        out.append(value)
    return out


def weekday(i: int) -> int:
    return (i * STEP // DAY) % 7  # 0 = Monday


def hour_of_day(i: int) -> float:
    return (i * STEP % DAY) / HOUR


def office_hours(per_step: int) -> Rate:
    """Monday to Friday, 09:00 to 17:00."""
    return lambda i: per_step if weekday(i) < 5 and 9 <= hour_of_day(i) < 17 else 0


def daytime(per_step: int) -> Rate:
    """Every day, 08:00 to 20:00."""
    return lambda i: per_step if 8 <= hour_of_day(i) < 20 else 0


def every(steps: int, offset: int = 0) -> Rate:
    """One event every `steps` samples."""
    return lambda i: 1 if i % steps == offset else 0


def notation(values: Values) -> str:
    """promtool's expanding notation: `a+bxn` is n+1 values, `_xn` n missing ones."""

    def fmt(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else repr(round(v, 6))

    parts: list[str] = []
    i = 0
    while i < len(values):
        if values[i] is None:
            j = i
            while j < len(values) and values[j] is None:
                j += 1
            parts.append(f"_x{j - i}")
            i = j
            continue
        first = values[i]
        assert first is not None
        if i + 1 < len(values) and values[i + 1] is not None:
            step = values[i + 1] - first  # type: ignore[operator]
            j = i + 1
            while (
                j + 1 < len(values)
                and values[j + 1] is not None
                and values[j + 1] - values[j] == step  # type: ignore[operator]
            ):
                j += 1
            parts.append(f"{fmt(first)}{'+' if step >= 0 else '-'}{fmt(abs(step))}x{j - i}")
            i = j + 1
        else:
            parts.append(fmt(first))
            i += 1
    return " ".join(parts)


class Story:
    """The series of one autoresponder."""

    def __init__(
        self,
        ident: int,
        name: str,
        account: str = "acme",
        instance: str = "pinpointe-exporter-7f9c:9863",
    ) -> None:
        self.labels = {
            "job": "pinpointe",
            "account": account,
            "autoresponder_id": str(ident),
            "autoresponder_name": name,
        }
        self.instance = instance
        self.series: list[tuple[str, dict[str, str], Values]] = []

    def add(self, metric: str, values: Values, **extra: str) -> Story:
        labels = {**self.labels, "instance": self.instance, **extra}
        self.series.append((f"pinpointe_autoresponder_{metric}", labels, values))
        return self


def selector(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def ar(ident: int, name: str = "", account: str = "acme") -> dict[str, str]:
    return {"account": account, "autoresponder_id": str(ident), "autoresponder_name": name}


def firing_count(alertname: str, ident: int, window: str, at: str, comment: str) -> dict[str, Any]:
    """No evaluation of `window` before `at` had the alert firing for autoresponder ident."""
    return {
        "_comment": comment,
        "expr": (
            f'count_over_time(ALERTS{{alertname="{alertname}",alertstate="firing",'
            f'autoresponder_id="{ident}"}}[{window}])'
        ),
        "eval_time": at,
        "exp_samples": [],
    }


# ---- the storylines ------------------------------------------------------------------

STORIES: list[Story] = []
EXPR_TESTS: list[dict[str, Any]] = []
ALERT_TESTS: list[dict[str, Any]] = []

# 1. A deleted send. 1,152 recipients a day; at day 12 12:00 Pinpointe deletes an old
# send: cumulative recipients fall by 5,000, its bounces by 150. Not a stop, and the
# 24 h figures keep their value (only the hour of the fall is unknown).
deleted = t(12, 12)
s = Story(1, "Daily digest")
s.add("recipients", cumulative(80_000, lambda i: 4 - (5000 if i == deleted else 0)))
s.add(
    "bounces",
    cumulative(2_000, lambda i: every(24)(i) - (150 if i == deleted else 0)),
    bounce_type="soft",
)
s.add("bounces", cumulative(500, every(72)), bounce_type="hard")
STORIES.append(s)
EXPR_TESTS += [
    firing_count(
        "PinpointeAutoresponderStoppedSending",
        1,
        "1d",
        when(13, 12),
        "1: no stop alert in the day after the deleted send",
    ),
    {
        "_comment": "1: 23 whole hours of 48 recipients (the hour of the fall is unknown)",
        "expr": AR_RULE + 'recipients:delta24h{autoresponder_id="1"}',
        "eval_time": when(12, 18),
        "exp_samples": [
            {
                "labels": selector(
                    AR_RULE + "recipients:delta24h",
                    ar(1, "Daily digest"),
                ),
                "value": 23 * 48,
            }
        ],
    },
    {
        "_comment": "1: the 24 h bounce ratio does not go silent: 14 bounces / 1104 recipients",
        "expr": AR_RULE + 'bounces_per_recipients:ratio_delta24h{autoresponder_id="1"}',
        "eval_time": when(12, 18),
        "exp_samples": [
            {
                "labels": selector(
                    AR_RULE + "bounces_per_recipients:ratio_delta24h",
                    ar(1, "Daily digest"),
                ),
                "value": 14 / (23 * 48),
            }
        ],
    },
]

# 2. Monday to Friday, office hours, 960 a day: silent all weekend, up to Monday 09:00.
s = Story(2, "Office hours")
s.add("recipients", cumulative(10_000, office_hours(10)))
STORIES.append(s)
EXPR_TESTS.append(
    firing_count(
        "PinpointeAutoresponderStoppedSending",
        2,
        "2d12h",
        when(14, 8, 45),
        "2: a weekday autoresponder is silent from Friday 20:15 to Monday 08:45",
    )
)

# 3. The same rhythm, but it really stops on Wednesday of week 2 at 12:00: fires on
# Thursday once a whole day has passed without the sends the Thursday before had.
stop = t(9, 12)
s = Story(3, "Office hours stopped")
s.add("recipients", cumulative(10_000, lambda i: office_hours(10)(i) if i < stop else 0))
STORIES.append(s)
ALERT_TESTS += [
    {
        "_comment": "3: Thursday 11:00, Wednesday 11:00-12:00 still in the window: silent",
        "eval_time": when(10, 11),
        "alertname": "PinpointeAutoresponderStoppedSending",
        "ar": 3,
    },
    {
        "_comment": "3: Thursday 14:00, a whole day without the sends of a week earlier: fires",
        "eval_time": when(10, 14),
        "alertname": "PinpointeAutoresponderStoppedSending",
        "ar": 3,
    },
]

# 4. Data returning after a long gap: every day 08:00-20:00, 576 a day; the token
# expired on Friday night, the exporter withdrew the series (stale_after) from
# Saturday 00:00 to Monday 02:00; Pinpointe kept sending meanwhile. Monday 02:00 to
# 08:00 is flat (night), as the first day after the gap.
gap = range(t(12), t(14, 2))
s = Story(4, "After the weekend gap")
figures = cumulative(20_000, daytime(4))
s.add("recipients", [None if i in gap else v for i, v in enumerate(figures)])
STORIES.append(s)
EXPR_TESTS.append(
    firing_count(
        "PinpointeAutoresponderStoppedSending",
        4,
        "6h",
        when(14, 8),
        "4: figures back after a 50 h gap, flat at night: no stop (no sample 24 h ago)",
    )
)

# 5. One complaint is not a complaint problem: 288 a day with one complaint a day
# (0.35 %), and 6. 864 a day with one complaint (0.12 %).
s = Story(5, "Small welcome")
s.add("recipients", cumulative(3_000, lambda i: 1))
s.add("complaints", cumulative(2, every(288, t(0, 10))))
STORIES.append(s)
s = Story(6, "Medium welcome")
s.add("recipients", cumulative(9_000, lambda i: 3))
s.add("complaints", cumulative(4, lambda i: 1 if i == t(1, 10) else 0))
STORIES.append(s)
for ident in (5, 6):
    EXPR_TESTS.append(
        firing_count(
            "PinpointeHighComplaintRate",
            ident,
            "3d",
            when(3),
            f"{ident}: a single complaint a day does not fire the complaint alert",
        )
    )

# 7. Four complaints a day at 1,152 a day (0.35 %, at least 3 complaints): fires.
s = Story(7, "Complainers")
s.add("recipients", cumulative(30_000, lambda i: 4))
s.add("complaints", cumulative(10, every(72, 5)))
STORIES.append(s)
ALERT_TESTS.append(
    {
        "_comment": "7: four complaints a day at 1,152 a day fire the complaint alert",
        "eval_time": when(2, 12),
        "alertname": "PinpointeHighComplaintRate",
        "ar": 7,
    }
)

# 8. A list import: 2,880 a day, then 28,800 a day from day 12; the true open rate is
# a constant 30 %, opens arrive 12 hours after the send. Not an open-rate drop.
imported = t(12)
s = Story(8, "Imported list")
rec = cumulative(50_000, lambda i: 100 if i >= imported else 10)
s.add("recipients", rec)
lag = t(0, 12)
s.add(
    "unique_opens",
    [15_000 + 0.3 * (rec[i - lag] - 50_000) if i >= lag else 15_000 for i in range(N)],
)
STORIES.append(s)
EXPR_TESTS.append(
    firing_count(
        "PinpointeOpenRateDropped",
        8,
        "2d12h",
        when(14, 12),
        "8: a tenfold volume after a list import is no open-rate drop",
    )
)

# 9. A real open-rate drop at a steady 2,880 a day: 30 % then, from day 12, 10 %.
drop = t(12)
s = Story(9, "Spam folder")
s.add("recipients", cumulative(50_000, lambda i: 10))
s.add("unique_opens", cumulative(15_000, lambda i: 1 if i >= drop else 3))
STORIES.append(s)
ALERT_TESTS.append(
    {
        "_comment": "9: the open rate fell from 30 % to 10 % at a steady volume: fires",
        "eval_time": when(13, 6),
        "alertname": "PinpointeOpenRateDropped",
        "ar": 9,
    }
)

# 10. Soft-to-hard reclassification: 1,152 a day, soft bounces 2.1 %, hard 1.4 %; at
# day 13 12:00 Pinpointe reclassifies 40 soft bounces as hard.
reclassified = t(13, 12)
s = Story(10, "Reclassified")
s.add("recipients", cumulative(40_000, lambda i: 4))
s.add(
    "bounces",
    cumulative(900, lambda i: every(12)(i) - (40 if i == reclassified else 0)),
    bounce_type="soft",
)
s.add(
    "bounces",
    cumulative(300, lambda i: every(18, 3)(i) + (40 if i == reclassified else 0)),
    bounce_type="hard",
)
s.add("bounces", cumulative(0, lambda i: 0), bounce_type="unknown")
STORIES.append(s)
EXPR_TESTS += [
    firing_count(
        "PinpointeHighHardBounceRate",
        10,
        "1d",
        when(14, 12),
        "10: 40 reclassified bounces are no new hard bounces",
    ),
    firing_count(
        "PinpointeHighBounceRate",
        10,
        "1d",
        when(14, 12),
        "10: nor new bounces",
    ),
]

# 12. A pod replacement at night: every day 08:00-20:00, 576 a day; at day 13 02:00
# the exporter pod is replaced, the series continue with a new instance label.
replaced = t(13, 2)
figures = cumulative(20_000, daytime(4))
s = Story(12, "Pod replaced")
s.add("recipients", [v if i < replaced else None for i, v in enumerate(figures)])
STORIES.append(s)
s = Story(12, "Pod replaced", instance="pinpointe-exporter-5b2d:9863")
s.add("recipients", [None if i < replaced else v for i, v in enumerate(figures)])
STORIES.append(s)
EXPR_TESTS += [
    firing_count(
        "PinpointeAutoresponderStoppedSending",
        12,
        "6h",
        when(13, 8),
        "12: a new instance label with the same figures is no stop",
    ),
    {
        "_comment": "12: the whole day's 576 recipients across the pod replacement",
        "expr": AR_RULE + 'recipients:delta24h{autoresponder_id="12"}',
        "eval_time": when(13, 12),
        "exp_samples": [
            {
                "labels": selector(
                    AR_RULE + "recipients:delta24h",
                    ar(12, "Pod replaced"),
                ),
                "value": 576,
            }
        ],
    },
]

# 13. Ten small autoresponders of account beta, 48 a day each (under every
# per-autoresponder floor), one complaint a day each: the account runs at 2.1 %.
for k in range(10):
    s = Story(100 + k, f"Drip {k}", account="beta")
    s.add("recipients", cumulative(1_000, every(6, k % 6), n=t(3)))
    s.add("complaints", cumulative(0, every(288, t(0, 8 + k)), n=t(3)))
    STORIES.append(s)
ALERT_TESTS += [
    {
        "_comment": f"13: account beta at 2.1 % complaints: {name}",
        "eval_time": when(2, 12),
        "alertname": name,
        "account": "beta",
    }
    for name in ("PinpointeAccountComplaintRateHigh", "PinpointeAccountComplaintRateCritical")
]
for k in range(10):
    EXPR_TESTS.append(
        firing_count(
            "PinpointeHighComplaintRate",
            100 + k,
            "1d",
            when(2, 12),
            f"13: autoresponder {100 + k} alone is under the floor",
        )
    )


# 14. A bad list: 1,152 a day, 6.25 % soft and 2.8 % hard bounces, 2.1 % unsubscribes.
# From day 13 on (nothing before, as if the list were imported then).
bad = t(13)
s = Story(14, "Bad list")
s.add("recipients", cumulative(70_000, lambda i: 4))
s.add("bounces", cumulative(100, lambda i: every(4)(i) if i >= bad else 0), bounce_type="soft")
s.add("bounces", cumulative(50, lambda i: every(9)(i) if i >= bad else 0), bounce_type="hard")
s.add("unsubscribes", cumulative(30, lambda i: every(12)(i) if i >= bad else 0))
STORIES.append(s)
RATE_ALERTS = (
    "PinpointeHighBounceRate",
    "PinpointeHighHardBounceRate",
    "PinpointeHighUnsubscribeRate",
)
for name in RATE_ALERTS:
    ALERT_TESTS += [
        {
            "_comment": f"14: {name}: day 13 06:00, too few events yet: silent",
            "eval_time": when(13, 6),
            "alertname": name,
            "ar": 14,
        },
        {
            "_comment": f"14: {name}: a day of the bad list: fires",
            "eval_time": when(14, 6),
            "alertname": name,
            "ar": 14,
        },
    ]
# 15. A list import of a bad list: 288 a day with 1 % hard bounces, then from day 13
# 12:00 2,880 a day with 10 % hard bounces and 0.28 % complaints. Ten times the volume of a
# week earlier makes these ratios read lower, never higher (their events arrive after
# the send): the bounce, hard-bounce and complaint alerts fire within 12 hours and keep
# firing, not a week later (only PinpointeOpenRateDropped is guarded against a rise).
# (Day 13 12:00: story 14's alert tests at 13d6h are silent ones.)
bad_import = t(13, 12)
s = Story(15, "Bad import")
s.add("recipients", cumulative(50_000, lambda i: 10 if i >= bad_import else 1))
s.add(
    "bounces",
    cumulative(500, lambda i: 1 if i >= bad_import else every(100)(i)),
    bounce_type="hard",
)
s.add("complaints", cumulative(5, lambda i: every(36)(i) if i >= bad_import else 0))
STORIES.append(s)
for name in ("PinpointeHighHardBounceRate", "PinpointeHighComplaintRate"):
    EXPR_TESTS += [
        firing_count(name, 15, "13d", when(13, 12), f"15: {name}: silent before the import"),
        {
            "_comment": f"15: {name}: fires within 12 hours of the import",
            "expr": f'ALERTS{{alertname="{name}",alertstate="firing",autoresponder_id="15"}}',
            "eval_time": when(14),
            "exp_samples": [
                {
                    "labels": selector(
                        "ALERTS",
                        {
                            "alertname": name,
                            "alertstate": "firing",
                            **ar(15, "Bad import"),
                            "severity": "warning",
                        },
                    ),
                    "value": 1,
                }
            ],
        },
        {
            "_comment": f"15: {name}: firing at every evaluation of day 14 (both ends: 97), "
            "while the 24 h volume is ten times the week before",
            "expr": (
                f'count_over_time(ALERTS{{alertname="{name}",alertstate="firing",'
                'autoresponder_id="15"}[1d])'
            ),
            "eval_time": when(14, 23, 45),
            "exp_samples": [
                {
                    "labels": selector(
                        "",
                        {
                            "alertname": name,
                            "alertstate": "firing",
                            **ar(15, "Bad import"),
                            "severity": "warning",
                        },
                    ),
                    "value": 24 * 4 + 1,
                }
            ],
        },
    ]
ALERT_TESTS += [
    {
        "_comment": f"15: {name}: the import's 10 %, at ten times the volume of a week earlier",
        "eval_time": when(14, 6),
        "alertname": name,
        "ar": 15,
    }
    for name in ("PinpointeHighBounceRate", "PinpointeHighHardBounceRate")
]

ALERT_TESTS += [
    {
        "_comment": "9: the open rate fell 6 hours ago: silent yet",
        "eval_time": when(12, 6),
        "alertname": "PinpointeOpenRateDropped",
        "ar": 9,
    },
    {
        "_comment": "7: day 0 06:00, too few complaints yet: silent",
        "eval_time": when(0, 6),
        "alertname": "PinpointeHighComplaintRate",
        "ar": 7,
    },
]
ALERT_TESTS += [
    {
        "_comment": f"13: account beta, day 0 06:00, too few complaints yet: {name} silent",
        "eval_time": when(0, 6),
        "alertname": name,
        "account": "beta",
    }
    for name in ("PinpointeAccountComplaintRateHigh", "PinpointeAccountComplaintRateCritical")
]

# 20-22. Reference figures for the value checks of every 24 h recording rule: account
# gamma, autoresponder 20 with every figure, 21 with recipients only, 22 a draft that
# never sent (no ratio, never NaN or +Inf). Per day: 2,880 recipients, 1,152 opens, 864
# unique opens, 576 clicks, 288 unique clicks, 24 unsubscribes, 2 complaints, 48 soft,
# 24 hard and 4 unknown bounces.
s = Story(20, "Reference", account="gamma")
for metric, per_step in (("recipients", 10), ("opens", 4), ("unique_opens", 3), ("clicks", 2)):
    s.add(metric, cumulative(1_000 * per_step, lambda i, k=per_step: k))
s.add("unique_clicks", cumulative(500, lambda i: 1))
s.add("unsubscribes", cumulative(40, every(12)))
s.add("complaints", cumulative(3, every(144)))
for bounce_type, steps in (("soft", 6), ("hard", 12), ("unknown", 72)):
    s.add("bounces", cumulative(60, every(steps)), bounce_type=bounce_type)
STORIES.append(s)
s = Story(21, "Recipients only", account="gamma")
s.add("recipients", cumulative(5_000, lambda i: 10))
STORIES.append(s)
s = Story(22, "Draft", account="gamma")
s.add("recipients", [0] * N)
s.add("unique_opens", [0] * N)
STORIES.append(s)

REFERENCE_AT = when(14, 12)
REFERENCE = {
    AR_RULE + "recipients:delta24h": {20: 2880, 21: 2880, 22: 0},
    AR_RULE + "opens:delta24h": {20: 1152},
    AR_RULE + "unique_opens:delta24h": {20: 864, 22: 0},
    AR_RULE + "clicks:delta24h": {20: 576},
    AR_RULE + "unique_clicks:delta24h": {20: 288},
    AR_RULE + "unsubscribes:delta24h": {20: 24},
    AR_RULE + "complaints:delta24h": {20: 2},
    AR_RULE + "bounces:delta24h": {20: 76},
    AR_RULE + "hard_bounces:delta24h": {20: 24},
    AR_RULE + "recipients:delta24h_offset7d": {
        20: 2880,
        21: 2880,
        22: 0,
    },
    AR_RULE + "recipients_per_recipients_a_week_earlier:ratio_delta24h": {
        20: 1,
        21: 1,
    },
    AR_RULE + "unique_opens_per_recipients:ratio_delta24h": {20: 864 / 2880},
    AR_RULE + "unique_clicks_per_recipients:ratio_delta24h": {20: 288 / 2880},
    AR_RULE + "bounces_per_recipients:ratio_delta24h": {20: 76 / 2880},
    AR_RULE + "hard_bounces_per_recipients:ratio_delta24h": {20: 24 / 2880},
    AR_RULE + "unsubscribes_per_recipients:ratio_delta24h": {20: 24 / 2880},
    AR_RULE + "complaints_per_recipients:ratio_delta24h": {20: 2 / 2880},
    ACCOUNT_RULE + "recipients:delta24h": {"gamma": 5760},
    ACCOUNT_RULE + "opens:delta24h": {"gamma": 1152},
    ACCOUNT_RULE + "unique_opens:delta24h": {"gamma": 864},
    ACCOUNT_RULE + "clicks:delta24h": {"gamma": 576},
    ACCOUNT_RULE + "unsubscribes:delta24h": {"gamma": 24},
    ACCOUNT_RULE + "complaints:delta24h": {"gamma": 2},
    ACCOUNT_RULE + "bounces:delta24h": {"gamma": 76},
    ACCOUNT_RULE + "hard_bounces:delta24h": {"gamma": 24},
    ACCOUNT_RULE + "unique_opens_per_recipients:ratio_delta24h": {"gamma": 864 / 5760},
    ACCOUNT_RULE + "bounces_per_recipients:ratio_delta24h": {"gamma": 76 / 5760},
    ACCOUNT_RULE + "hard_bounces_per_recipients:ratio_delta24h": {"gamma": 24 / 5760},
    ACCOUNT_RULE + "unsubscribes_per_recipients:ratio_delta24h": {"gamma": 24 / 5760},
    ACCOUNT_RULE + "complaints_per_recipients:ratio_delta24h": {"gamma": 2 / 5760},
}
NAMES = {20: "Reference", 21: "Recipients only", 22: "Draft"}
for record, values in REFERENCE.items():
    samples = []
    for key, value in values.items():
        labels = {"account": key} if isinstance(key, str) else ar(key, NAMES[key], "gamma")
        samples.append({"labels": selector(record, labels), "value": value})
    EXPR_TESTS.append(
        {
            "_comment": f"reference figures: {record}",
            "expr": f'{record}{{account="gamma"}}',
            "eval_time": REFERENCE_AT,
            "exp_samples": samples,
        }
    )
EXPR_TESTS.append(
    {
        "_comment": "22: a draft that never sent has no 24 h ratio (never NaN or +Inf)",
        "expr": '{__name__=~".+:ratio_delta24h", autoresponder_name="Draft"}',
        "eval_time": REFERENCE_AT,
        "exp_samples": [],
    }
)


# ---- flapping: a file of its own, evaluated every 5 minutes ----------------------
# The hysteresis reads the alert's own ALERTS series from the previous evaluation,
# which must lie within Prometheus' 5 minute lookback (as it does at the 1 minute
# evaluation_interval of prometheus/prometheus.yml).

FLAP_DAYS = 4
FLAP_N = FLAP_DAYS * DAY // STEP
FLAP_STORIES: list[Story] = []
FLAP_TESTS: list[dict[str, Any]] = []

# 11. A steady true bounce rate just over the threshold (5.6 %, drawn hour by hour,
# from day 0 10:00), plus a one-hour exporter outage on day 3 10:00: one episode from
# the first firing on, not one per dip, and not resolved by the outage.
rng = random.Random(11)
hourly_bounces = [sum(rng.random() < 0.056 for _ in range(48)) for _ in range(FLAP_DAYS * 24)]
outage = range(t(3, 10), t(3, 11))
s = Story(11, "Borderline bounces")
rec = cumulative(60_000, lambda i: 4, n=FLAP_N)
bounces = cumulative(3_000, lambda i: hourly_bounces[i // 12] if i % 12 == 0 else 0, n=FLAP_N)
s.add("recipients", [None if i in outage else v for i, v in enumerate(rec)])
s.add("bounces", [None if i in outage else v for i, v in enumerate(bounces)], bounce_type="soft")
FLAP_STORIES.append(s)
FLAP_TESTS.append(
    {
        "_comment": "11: firing at every evaluation of the last 2 days (577 = 2 days of 5 min + 1)",
        "expr": (
            'count_over_time(ALERTS{alertname="PinpointeHighBounceRate",alertstate="firing",'
            'autoresponder_id="11"}[2d])'
        ),
        "eval_time": when(3, 23),
        "exp_samples": [
            {
                "labels": selector(
                    "",
                    {
                        "account": "acme",
                        "alertname": "PinpointeHighBounceRate",
                        "alertstate": "firing",
                        "autoresponder_id": "11",
                        "autoresponder_name": "Borderline bounces",
                        "severity": "warning",
                    },
                ),
                "value": 577,
            }
        ],
    }
)

# ---- the YAML ----------------------------------------------------------------------


def expected_alert(case: dict[str, Any]) -> dict[str, Any]:
    """Exact labels and annotations, from EXPECTED below (None: no alert)."""
    key = (case["alertname"], case.get("ar", case.get("account")), case["eval_time"])
    expected = EXPECTED[key]
    alerts = []
    if expected is not None:
        labels, annotations = expected
        alerts = [
            {
                "exp_labels": {"severity": "warning", **labels},
                "exp_annotations": {**annotations, "runbook_url": RB + case["alertname"].lower()},
            }
        ]
    return {"eval_time": case["eval_time"], "alertname": case["alertname"], "exp_alerts": alerts}


RB = "https://github.com/pinpointe-exporter/pinpointe-exporter/blob/main/docs/runbooks.md#"
ACCOUNT_COMPLAINTS = (
    "2.083% of all emails sent by Pinpointe account beta in the last 24 hours were reported "
    "as spam, above {limit} (the mailbox providers' {tier}). Providers judge the whole "
    "sending account: deliverability of every autoresponder is at risk. Find the "
    'autoresponders with the most complaints (dashboard "Top offenders"), pause the worst, '
    "and check opt-in sources and sender recognisability."
)
EXPECTED: dict[tuple[str, Any, str], tuple[dict[str, str], dict[str, str]] | None] = {
    ("PinpointeAutoresponderStoppedSending", 3, when(10, 11)): None,
    ("PinpointeAutoresponderStoppedSending", 3, when(10, 14)): (
        ar(3, "Office hours stopped"),
        {
            "summary": "Autoresponder Office hours stopped of Pinpointe account acme "
            "stopped sending",
            "description": 'Autoresponder "Office hours stopped" (id 3) of Pinpointe account acme '
            "has sent no email in the last 24 hours, although it sent 960 in the same 24 hours "
            "a week earlier. Check in Pinpointe that it is still active, that its trigger (list "
            "subscription, form, date field) still fires, and that the sign-up form or "
            "integration feeding its list still adds contacts.",
        },
    ),
    ("PinpointeHighComplaintRate", 7, when(2, 12)): (
        ar(7, "Complainers"),
        {
            "summary": "High spam-complaint rate: autoresponder Complainers of Pinpointe "
            "account acme",
            "description": "0.3472% of the emails sent in the last 24 hours by autoresponder "
            '"Complainers" (id 7) of Pinpointe account acme were reported as spam (feedback '
            "loops), above the threshold of 0.1% (counted with at least 500 recipients and 3 "
            "complaints; it resolves below 0.08%). This hurts the sender reputation of the "
            "whole account: pause the autoresponder if it keeps rising, check that its "
            "recipients asked for this mail (opt-in source, timing after sign-up), that the "
            "sender name is recognisable and that the unsubscribe link is prominent.",
        },
    ),
    ("PinpointeOpenRateDropped", 9, when(13, 6)): (
        ar(9, "Spam folder"),
        {
            "summary": "Open rate of autoresponder Spam folder of Pinpointe account acme dropped",
            "description": 'The open rate of autoresponder "Spam folder" (id 9) of Pinpointe '
            "account acme over the last 24 hours is 10%, less than 50% of the 30% it had at "
            "the same time a week earlier, with a similar volume. Its mail is probably landing "
            "in spam: check the account's sender reputation (Google Postmaster Tools), recent "
            "bounce and complaint rates, and whether the subject, sender or tracking domain of "
            "this autoresponder changed.",
        },
    ),
    ("PinpointeHighBounceRate", 14, when(13, 6)): None,
    ("PinpointeHighHardBounceRate", 14, when(13, 6)): None,
    ("PinpointeHighUnsubscribeRate", 14, when(13, 6)): None,
    ("PinpointeHighBounceRate", 14, when(14, 6)): (
        ar(14, "Bad list"),
        {
            "summary": "High bounce rate: autoresponder Bad list of Pinpointe account acme",
            "description": "9.028% of the emails sent in the last 24 hours by autoresponder "
            '"Bad list" (id 14) of Pinpointe account acme bounced, above the threshold of 5% '
            "(counted with at least 200 recipients and 10 bounces; it resolves below 4%). Find "
            "where the new contacts of its list come from (a form without double opt-in, an "
            "import of an old or bought list), remove the bouncing addresses, and check the "
            "sending domain's SPF/DKIM if soft bounces dominate.",
        },
    ),
    ("PinpointeHighHardBounceRate", 14, when(14, 6)): (
        ar(14, "Bad list"),
        {
            "summary": "High hard-bounce rate: autoresponder Bad list of Pinpointe account acme",
            "description": "2.778% of the emails sent in the last 24 hours by autoresponder "
            '"Bad list" (id 14) of Pinpointe account acme hard-bounced (address does not '
            "exist), above the threshold of 2% (counted with at least 200 recipients and 5 hard "
            "bounces; it resolves below 1.6%). Mailbox providers read this as a badly kept "
            "list: find the source of the new contacts (a sign-up form open to typos or bots, "
            "a recent import), add address validation or double opt-in there, and make sure "
            "hard bounces are suppressed.",
        },
    ),
    ("PinpointeHighUnsubscribeRate", 14, when(14, 6)): (
        ar(14, "Bad list"),
        {
            "summary": "High unsubscribe rate: autoresponder Bad list of Pinpointe account acme",
            "description": "2.083% of the emails sent in the last 24 hours by autoresponder "
            '"Bad list" (id 14) of Pinpointe account acme unsubscribed, above the threshold of '
            "1% (counted with at least 200 recipients and 5 unsubscribes; it resolves below "
            "0.8%). Review what changed in this autoresponder (content, frequency, the step "
            "that is sending now) and whether its audience matches what they signed up for.",
        },
    ),
    **{
        (name, 15, at): (ar(15, "Bad import"), text)
        for at in (when(14, 6),)
        for name, text in (
            (
                "PinpointeHighBounceRate",
                {
                    "summary": "High bounce rate: autoresponder Bad import of Pinpointe account "
                    "acme",
                    "description": "9.611% of the emails sent in the last 24 hours by "
                    "autoresponder "
                    '"Bad import" (id 15) of Pinpointe account acme bounced, above the threshold '
                    "of 5% (counted with at least 200 recipients and 10 bounces; it resolves "
                    "below 4%). Find where the new contacts of its list come from (a form without "
                    "double opt-in, an import of an old or bought list), remove the bouncing "
                    "addresses, and check the sending domain's SPF/DKIM if soft bounces dominate.",
                },
            ),
            (
                "PinpointeHighHardBounceRate",
                {
                    "summary": "High hard-bounce rate: autoresponder Bad import of Pinpointe "
                    "account acme",
                    "description": "9.611% of the emails sent in the last 24 hours by "
                    "autoresponder "
                    '"Bad import" (id 15) of Pinpointe account acme hard-bounced (address does '
                    "not exist), above the threshold of 2% (counted with at least 200 recipients "
                    "and 5 hard bounces; it resolves below 1.6%). Mailbox providers read this as "
                    "a badly kept list: find the source of the new contacts (a sign-up form open "
                    "to typos or bots, a recent import), add address validation or double opt-in "
                    "there, and make sure hard bounces are suppressed.",
                },
            ),
        )
    },
    ("PinpointeOpenRateDropped", 9, when(12, 6)): None,
    ("PinpointeHighComplaintRate", 7, when(0, 6)): None,
    ("PinpointeAccountComplaintRateHigh", "beta", when(0, 6)): None,
    ("PinpointeAccountComplaintRateCritical", "beta", when(0, 6)): None,
    ("PinpointeAccountComplaintRateHigh", "beta", when(2, 12)): (
        {"account": "beta"},
        {
            "summary": "Spam-complaint rate of Pinpointe account beta above 0.1 %",
            "description": ACCOUNT_COMPLAINTS.format(limit="0.1%", tier="guideline"),
        },
    ),
    ("PinpointeAccountComplaintRateCritical", "beta", when(2, 12)): (
        {"account": "beta", "severity": "critical"},
        {
            "summary": "Spam-complaint rate of Pinpointe account beta above 0.3 %",
            "description": ACCOUNT_COMPLAINTS.format(limit="0.3%", tier="hard limit"),
        },
    ),
}


GROUP_ORDER = [
    "pinpointe-autoresponder-ratios",
    "pinpointe-autoresponder-24h",
    "pinpointe-alert-thresholds",
    "pinpointe-exporter",
    "pinpointe-autoresponder",
    "pinpointe-account",
]


def document(
    name: str,
    evaluation: str,
    stories: list[Story],
    expr_tests: list[dict[str, Any]],
    alert_tests: list[dict[str, Any]],
) -> dict[str, Any]:
    test: dict[str, Any] = {
        "name": name,
        "interval": "5m",
        "input_series": [
            {"series": selector(metric, labels), "values": notation(values)}
            for story in stories
            for metric, labels, values in story.series
        ],
        "promql_expr_test": [
            {k: v for k, v in case.items() if k != "_comment"} for case in expr_tests
        ],
    }
    if alert_tests:
        # promtool compares every alert of a name at a time: storylines checked at the
        # same time share one entry
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for case in alert_tests:
            entry = expected_alert(case)
            key = (entry["eval_time"], entry["alertname"])
            if key in merged:
                merged[key]["exp_alerts"] += entry["exp_alerts"]
            else:
                merged[key] = entry
        test["alert_rule_test"] = list(merged.values())
    return {
        "rule_files": ["../rules.yml", "../alerts.yml"],
        "evaluation_interval": evaluation,
        "group_eval_order": GROUP_ORDER,
        "tests": [test],
    }


HEADER = """\
# GENERATED by prometheus/tests/generate_scenarios.py: edit that script, not this file.
# {what}; the script's comments tell each storyline. What is checked:
"""


def render(
    what: str,
    evaluation: str,
    stories: list[Story],
    expr_tests: list[dict[str, Any]],
    alert_tests: list[dict[str, Any]],
) -> str:
    lines = [HEADER.format(what=what)]
    for case in expr_tests:
        lines.append(f"#   {case['eval_time']:>8}  {case['_comment']}\n")
    for case in alert_tests:
        lines.append(f"#   {case['eval_time']:>8}  {case['_comment']}\n")
    doc = document(what, evaluation, stories, expr_tests, alert_tests)
    return "".join(lines) + yaml.safe_dump(doc, sort_keys=False, width=1_000_000)


FILES = {
    "scenarios_test.yml": lambda: render(
        "Everyday autoresponder life: two weeks of 5-minute samples",
        EVAL,
        STORIES,
        EXPR_TESTS,
        ALERT_TESTS,
    ),
    "scenarios_flapping_test.yml": lambda: render(
        "A bounce rate at the threshold: four days of 5-minute samples",
        "5m",
        FLAP_STORIES,
        FLAP_TESTS,
        [],
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the YAML differs")
    args = parser.parse_args(argv)
    stale = []
    for name, build in FILES.items():
        path = OUT_DIR / name
        text = build()
        if not args.check:
            path.write_text(text, encoding="utf-8")
        elif not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    if stale:
        print(f"out of date: {', '.join(stale)}; run {__file__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
