#!/usr/bin/env python3
"""Write prometheus/tests/scenarios_*test.yml, for `promtool test rules`, from the
stories of prometheus/tests/scenarios/*.yml: autoresponders living through deleted
sends, weekends, gaps, imports and borderline rates, as the exporter reports them.

    python prometheus/tests/generate_scenarios.py          # rewrite the YAML
    python prometheus/tests/generate_scenarios.py --check  # exit 1 if it differs

A story is one autoresponder; each of its series starts at `start` and grows at every
5-minute sample by the sum of its `grow` terms:
    per_sample: N             N at every sample
    every: N, offset: K       1 at every Nth sample (sample index % N == K)
    office_hours: N           N per sample Monday to Friday 09:00-17:00 (day 0 is a Monday)
    daytime: N                N per sample every day 08:00-20:00
    at: T, add: N             N once, at time T (negative: the figure falls)
    hourly_draws: {seed, mails, probability}   at every whole hour, how many of `mails`
                              a seeded random draw makes bounce
and any term takes `from: T` / `until: T`. `follows: {metric, fraction, after}` makes a
series `start` plus `fraction` of another series' growth `after` later; `missing:
{from, until}` leaves samples out; `samples_until: T` ends the series. Times are
promtool durations from day 0 00:00 (12d18h). The checks are described in
scenarios/everyday_checks.yml.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
STEP = 300  # seconds between samples: the exporter's default poll_interval
TARGET = {"job": "pinpointe"}
INSTANCE = "pinpointe-exporter-7f9c:9863"
AR_RULE = "account_autoresponder:pinpointe_autoresponder_"
RUNBOOKS = "https://github.com/pinpointe-exporter/pinpointe-exporter/blob/main/docs/runbooks.md#"
GROUP_ORDER = [
    "pinpointe-autoresponder-ratios",
    "pinpointe-autoresponder-hourly",
    "pinpointe-autoresponder-24h",
    "pinpointe-alert-thresholds",
    "pinpointe-exporter",
    "pinpointe-exporter-data",
    "pinpointe-autoresponder",
    "pinpointe-account",
]
Values = list[float | None]


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))


def index(duration: str) -> int:
    return seconds(duration) // STEP


def when(duration: str) -> str:
    """A promtool eval_time, as written in the generated files."""
    d, rest = divmod(seconds(duration) // 60, 24 * 60)
    h, m = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((d, "d"), (h, "h"), (m, "m")) if v) or "0m"


def number(value: Any) -> float:
    """A value of the data files: a number or a fraction such as 14/1104."""
    if isinstance(value, str):
        numerator, denominator = value.split("/")
        return float(numerator) / float(denominator)
    return float(value)


def term(spec: dict[str, Any], samples: int) -> Callable[[int], float]:
    lo = index(spec["from"]) if "from" in spec else 0
    hi = index(spec["until"]) if "until" in spec else sys.maxsize
    hour = 3600 // STEP
    if "per_sample" in spec:
        f: Callable[[int], float] = lambda i: spec["per_sample"]  # noqa: E731
    elif "every" in spec:
        f = lambda i: 1 if i % spec["every"] == spec.get("offset", 0) else 0  # noqa: E731
    elif "office_hours" in spec:
        f = lambda i: (  # noqa: E731
            spec["office_hours"] if i * STEP // 86400 % 7 < 5 and 9 <= i % 288 / 12 < 17 else 0
        )
    elif "daytime" in spec:
        f = lambda i: spec["daytime"] if 8 <= i % 288 / 12 < 20 else 0  # noqa: E731
    elif "at" in spec:
        f = lambda i: spec["add"] if i == index(spec["at"]) else 0  # noqa: E731
    else:
        draw = spec["hourly_draws"]
        rng = random.Random(draw["seed"])
        hours = [
            sum(rng.random() < draw["probability"] for _ in range(draw["mails"]))
            for _ in range(samples // hour + 1)
        ]
        f = lambda i: hours[i // hour] if i % hour == 0 else 0  # noqa: E731
    return lambda i: f(i) if lo <= i < hi else 0


def values(spec: dict[str, Any], siblings: dict[str, Any], samples: int) -> Values:
    n = index(spec["samples_until"]) if "samples_until" in spec else samples
    out: Values
    if "follows" in spec:
        follows = spec["follows"]
        other_spec, other = siblings[follows["metric"]]
        lag, start = index(follows["after"]), spec["start"]
        out = [
            start + follows["fraction"] * (other[i - lag] - other_spec["start"])
            if i >= lag
            else start
            for i in range(n)
        ]
    else:
        terms = [term(t, samples) for t in spec.get("grow", [])]
        value, out = float(spec["start"]), []
        for i in range(n):
            value += sum(t(i) for t in terms)
            out.append(value)
    missing = spec.get("missing", {})
    lo, hi = index(missing.get("from", "0s")), index(missing["until"]) if "until" in missing else n
    return [None if missing and lo <= i < hi else v for i, v in enumerate(out)]


def notation(series: Values) -> str:
    """promtool's expanding notation: `a+bxn` is n+1 values, `_xn` n missing ones."""

    def fmt(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else repr(round(v, 6))

    parts: list[str] = []
    i = 0
    while i < len(series):
        first = series[i]
        if first is None:
            j = i
            while j < len(series) and series[j] is None:
                j += 1
            parts.append(f"_x{j - i}")
            i = j
            continue
        if i + 1 < len(series) and series[i + 1] is not None:
            step = series[i + 1] - first  # type: ignore[operator]
            j = i + 1
            while j + 1 < len(series) and series[j + 1] is not None:
                if series[j + 1] - series[j] != step:  # type: ignore[operator]
                    break
                j += 1
            parts.append(f"{fmt(first)}{'+' if step >= 0 else '-'}{fmt(abs(step))}x{j - i}")
            i = j + 1
        else:
            parts.append(fmt(first))
            i += 1
    return " ".join(parts)


def selector(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def story_labels(story: dict[str, Any]) -> dict[str, str]:
    account = story.get("account", "acme")
    return {
        "account": account,
        "autoresponder_id": str(story["id"]),
        "autoresponder_name": story["name"],
    }


def input_series(scenario: dict[str, Any], target: dict[str, str]) -> list[dict[str, str]]:
    samples = scenario["days"] * 86400 // STEP
    out = []
    for story in scenario["stories"]:
        siblings: dict[str, Any] = {}
        for spec in story["series"]:
            series = values(spec, siblings, samples)
            siblings.setdefault(spec["metric"], (spec, series))
            labels = {**target, **story_labels(story), "instance": story.get("instance", INSTANCE)}
            if "bounce_type" in spec:
                labels["bounce_type"] = spec["bounce_type"]
            out.append(
                {
                    "series": selector(f"pinpointe_autoresponder_{spec['metric']}", labels),
                    "values": notation(series),
                }
            )
    return out


def firing(alert: str, ident: Any) -> str:
    return f'ALERTS{{alertname="{alert}",alertstate="firing",autoresponder_id="{ident}"}}'


def expr_tests(check: dict[str, Any], stories: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    at = when(check["at"])
    if "never_fired" in check:
        c = check["never_fired"]
        return [
            {
                "expr": f"count_over_time({firing(c['alert'], ident)}[{c['within']}])",
                "eval_time": at,
                "exp_samples": [],
            }
            for ident in c.get("stories", [c.get("story")])
        ]
    if "rule" in check:
        c = check["rule"]
        record = AR_RULE + c["name"]
        sample = {
            "labels": selector(record, story_labels(stories[c["story"]])),
            "value": number(c["value"]),
        }
        return [
            {
                "expr": f'{record}{{autoresponder_id="{c["story"]}"}}',
                "eval_time": at,
                "exp_samples": [sample],
            }
        ]
    if "firing" in check:
        c = check["firing"]
        alert = {
            "alertname": c["alert"],
            "alertstate": "firing",
            **story_labels(stories[c["story"]]),
            "severity": "warning",
        }
        series = firing(c["alert"], c["story"])
        if "within" in c:
            return [
                {
                    "expr": f"count_over_time({series}[{c['within']}])",
                    "eval_time": at,
                    "exp_samples": [{"labels": selector("", alert), "value": c["evaluations"]}],
                }
            ]
        return [
            {
                "expr": series,
                "eval_time": at,
                "exp_samples": [{"labels": selector("ALERTS", alert), "value": 1}],
            }
        ]
    if "reference" in check:
        c, tests = check["reference"], []
        by_id = {
            story["id"]: story
            for story in stories.values()
            if story.get("account", "acme") == c["account"]
        }
        for rule, figures in c["autoresponders"].items():
            samples = [
                {"labels": selector(AR_RULE + rule, story_labels(by_id[k])), "value": number(v)}
                for k, v in figures.items()
            ]
            tests.append(
                {
                    "expr": f'{AR_RULE}{rule}{{account="{c["account"]}"}}',
                    "eval_time": at,
                    "exp_samples": samples,
                }
            )
        for rule, value in c["account_level"].items():
            record = "account:pinpointe_autoresponder_" + rule
            samples = [
                {"labels": selector(record, {"account": c["account"]}), "value": number(value)}
            ]
            tests.append(
                {
                    "expr": f'{record}{{account="{c["account"]}"}}',
                    "eval_time": at,
                    "exp_samples": samples,
                }
            )
        return tests
    return [{"expr": check["expr"], "eval_time": at, "exp_samples": check["samples"]}]


def alert_test(check: dict[str, Any], stories: dict[int, dict[str, Any]]) -> dict[str, Any]:
    c = check["alert"]
    labels = story_labels(stories[c["story"]]) if "story" in c else {"account": c["account"]}
    alerts = []
    if "fires" in c:
        annotations = {**c["fires"], "runbook_url": RUNBOOKS + c["name"].lower()}
        alerts = [
            {
                "exp_labels": {"severity": c.get("severity", "warning"), **labels},
                "exp_annotations": annotations,
            }
        ]
    return {"eval_time": when(check["at"]), "alertname": c["name"], "exp_alerts": alerts}


def load(path: Path) -> dict[str, Any]:
    scenario: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "checks_file" in scenario:
        scenario["checks"] = yaml.safe_load(
            (path.parent / scenario["checks_file"]).read_text(encoding="utf-8")
        )
    return scenario


def document(
    scenario: dict[str, Any],
    target: dict[str, str] = TARGET,
    rule_files: tuple[str, ...] = ("../rules.yml", "../alerts.yml"),
) -> dict[str, Any]:
    stories = {story["id"]: story for story in scenario["stories"]}
    checks = scenario["checks"]
    test: dict[str, Any] = {
        "name": scenario["title"],
        "interval": f"{STEP // 60}m",
        "input_series": input_series(scenario, target),
        "promql_expr_test": [t for c in checks if "alert" not in c for t in expr_tests(c, stories)],
    }
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for check in (c for c in checks if "alert" in c):
        entry = alert_test(check, stories)
        key = (entry["eval_time"], entry["alertname"])
        if key in merged:  # promtool compares every alert of a name at a time
            merged[key]["exp_alerts"] += entry["exp_alerts"]
        else:
            merged[key] = entry
    if merged:
        test["alert_rule_test"] = list(merged.values())
    return {
        "rule_files": list(rule_files),
        "evaluation_interval": scenario["evaluation_interval"],
        "group_eval_order": GROUP_ORDER,
        "tests": [test],
    }


def render(source: Path) -> tuple[str, str]:
    scenario = load(source)
    header = [
        "# GENERATED by prometheus/tests/generate_scenarios.py "
        f"from scenarios/{source.name}: edit that.\n",
        f"# {scenario['title']}; what is checked:\n",
    ]
    ordered = [c for c in scenario["checks"] if "alert" not in c] + [
        c for c in scenario["checks"] if "alert" in c
    ]
    header += [f"#   {when(c['at']):>9}  {c['why']}\n" for c in ordered]
    text = "".join(header) + yaml.safe_dump(document(scenario), sort_keys=False, width=1_000_000)
    return scenario["output"], text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the YAML differs")
    args = parser.parse_args(argv)
    stale = []
    for source in sorted((HERE / "scenarios").glob("*.yml")):
        if source.name.endswith("_checks.yml"):
            continue
        name, text = render(source)
        path = HERE / name
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
