"""End to end: simulator -> exporter -> Prometheus (the project's rules) -> Alertmanager
-> a webhook inside this test. Real processes on 127.0.0.1, random free ports.

What it proves, with values rather than timings:
  * every PromQL expression of every dashboard panel and variable returns data;
  * the recording rules equal the ratios computed from the simulator's own figures,
    fetched from its API with the body the exporter sends;
  * a token rejected by Pinpointe reaches the webhook as PinpointeCredentialsRejected
    and resolves once the token is accepted again.

The simulator's clock is frozen at T0, then jumped 6 simulated hours to T1 and frozen
again, so every figure Prometheus ever holds is one of two known snapshots.
The rules and alerts are loaded from time-scaled copies (tests/e2e_support.py): every
window, offset and group interval divided by 360, so the rules' hour lasts 10 s and
their 24 h window 4 minutes, and `for:` and `keep_firing_for:` are 0s. rules.yml is the
shipped file, and so is alerts.yml. The expressions are otherwise the shipped ones.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.simulator import SimAccount, Simulator
from tests.conftest import require_tool
from tests.dashboard_queries import dashboards, iter_panels, substitute
from tests.e2e_support import (
    Clock,
    Process,
    Prometheus,
    Webhook,
    eventually,
    free_port,
    scaled_rule_file,
)

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "apt-get install prometheus prometheus-alertmanager"
ACCOUNT = "acme"
USERNAME = "demo"
TOKEN = "demo-token"
JOB = "pinpointe"
SIMULATED_STEP = 6 * 3600.0
JUMP_MARGIN_SECONDS = 3  # less than phase A's 13 s of T0 samples before the jump

FIELDS = {
    "recipients": ("sendsize",),
    "opens": ("emailopens",),
    "unique_opens": ("emailopens_unique",),
    "clicks": ("linkclicks",),
    "unique_clicks": ("linkclicks_unique",),
    "bounces": ("bouncecount_soft", "bouncecount_hard", "bouncecount_unknown"),
    "hard_bounces": ("bouncecount_hard",),
    "unsubscribes": ("unsubscribecount",),
    "complaints": ("feedbackloopcount",),
}
# recording rule stem -> (numerator, denominator) in FIELDS
RATIOS = {
    "unique_opens_per_recipients": ("unique_opens", "recipients"),
    "unique_clicks_per_recipients": ("unique_clicks", "recipients"),
    "unique_clicks_per_unique_opens": ("unique_clicks", "unique_opens"),
    "bounces_per_recipients": ("bounces", "recipients"),
    "hard_bounces_per_recipients": ("hard_bounces", "recipients"),
    "unsubscribes_per_recipients": ("unsubscribes", "recipients"),
    "complaints_per_recipients": ("complaints", "recipients"),
}
RATIOS_24H = ("unique_opens_per_recipients", "unique_clicks_per_recipients",
              "bounces_per_recipients", "hard_bounces_per_recipients",
              "unsubscribes_per_recipients", "complaints_per_recipients")  # fmt: skip
VOLUMES_24H = ("recipients", "opens", "unique_opens", "clicks", "unique_clicks",
               "unsubscribes", "complaints", "bounces", "hard_bounces")  # fmt: skip

Figures = dict[str, dict[str, int]]  # autoresponder id -> FIELDS key -> value


def binary(name: str) -> str:
    return require_tool(name, INSTALL)


def api_figures(sim: Simulator) -> Figures:
    """The simulator's figures, asked the way the exporter asks (one page is enough)."""
    body = {
        "username": USERNAME,
        "usertoken": TOKEN,
        "requesttype": "Stats",
        "requestmethod": "GetAutoresponderResults",
        "details": {"grouping": "autoresponder", "pagination": {"limit": 100, "next": 0}},
    }
    response = requests.post(sim.url, json=body, timeout=10)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["status"] == "SUCCESS" and payload["pagination"]["next"] == 0
    return {
        str(record["autoresponderid"]): {
            key: sum(int(record[f]) for f in fields) for key, fields in FIELDS.items()
        }
        for record in payload["data"]
    }


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def regex_value(value: str) -> str:
    """A value as Grafana interpolates it into =~"...": regex-escaped, then PromQL-escaped."""
    escaped = re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\1", value)
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


# ---- the stack -----------------------------------------------------------------------


@pytest.fixture
def stack(
    tmp_path: Path,
    simulator: Callable[..., Simulator],
    exporter: Callable[..., Any],
) -> Iterator[dict[str, Any]]:
    prometheus_bin = binary("prometheus")
    alertmanager_bin = binary("prometheus-alertmanager")
    clock = Clock(float(int(time.time())))
    sim = simulator(
        SimAccount(
            username=USERNAME,
            token=TOKEN,
            autoresponders=6,
            sends_per_autoresponder=2,
            seed=7,
            extra_fields={"spamscore": 2},  # unmapped: feeds the "Unmapped API fields" table
        ),
        clock=clock,
    )
    figures_t0 = api_figures(sim)
    exp = exporter(
        {
            "poll_interval": "1s",
            "timeout": "5s",
            "stale_after": "1m",
            "accounts": [
                {
                    "name": ACCOUNT,
                    "api_url": sim.url,
                    "username": USERNAME,
                    "usertoken": TOKEN,
                    "groupings": ["autoresponder", "send"],
                }
            ],
        }
    )
    webhook = Webhook()
    processes: list[Process] = []
    try:
        am_port = free_port()
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "webhook",
                        "group_by": ["alertname", "account"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "webhook",
                            "webhook_configs": [{"url": webhook.url, "send_resolved": True}],
                        }
                    ],
                }
            )
        )
        (tmp_path / "am-data").mkdir()
        alertmanager = Process(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={am_config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
        )
        processes.append(alertmanager)

        # Test-only, time-scaled copies of the rules and alerts.
        fast_rules = scaled_rule_file(
            (ROOT / "prometheus/rules.yml").read_text(), tmp_path / "rules-fast.yml"
        )
        fast_alerts = scaled_rule_file(
            (ROOT / "prometheus/alerts.yml").read_text(), tmp_path / "alerts-fast.yml"
        )
        prom_port = free_port()
        prom_config = tmp_path / "prometheus.yml"
        prom_config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(fast_rules), str(fast_alerts)],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": JOB,
                            "static_configs": [{"targets": [f"127.0.0.1:{exp.port}"]}],
                        }
                    ],
                }
            )
        )
        prometheus = Process(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp_path / "prometheus.log",
        )
        processes.append(prometheus)
        prom = Prometheus(f"http://127.0.0.1:{prom_port}")

        def ready() -> bool:
            prometheus.alive()
            alertmanager.alive()
            ok = requests.get(f"{prom.url}/-/ready", timeout=2).status_code == 200
            am = requests.get(f"http://127.0.0.1:{am_port}/-/ready", timeout=2)
            return ok and am.status_code == 200

        eventually(ready, "Prometheus and Alertmanager to be ready")
        eventually(
            lambda: any(
                a["health"] == "up"
                for a in requests.get(f"{prom.url}/api/v1/targets", timeout=5).json()["data"][
                    "activeTargets"
                ]
            ),
            "Prometheus to scrape the exporter",
        )
        yield {
            "sim": sim,
            "clock": clock,
            "prom": prom,
            "webhook": webhook,
            "exporter": exp,
            "figures_t0": figures_t0,
            "started": time.time(),
            "processes": processes,
        }
    finally:
        for process in reversed(processes):
            process.stop()
        webhook.stop()


def test_end_to_end(stack: dict[str, Any]) -> None:
    sim: Simulator = stack["sim"]
    clock: Clock = stack["clock"]
    prom: Prometheus = stack["prom"]
    webhook: Webhook = stack["webhook"]
    f0: Figures = stack["figures_t0"]
    ids = sorted(f0)

    def holds(figures: Figures) -> bool:
        """Prometheus holds exactly these recipients figures for every autoresponder."""
        got = prom.by_autoresponder(f'pinpointe_autoresponder_recipients{{account="{ACCOUNT}"}}')
        return got == {i: float(figures[i]["recipients"]) for i in ids}

    # -- phase A: 13 s of the T0 snapshot ------------------------------------
    eventually(lambda: holds(f0), "Prometheus to hold the T0 figures")
    eventually(
        # more than one scaled hour (10 s) of T0: the hourly difference across the jump
        # needs a sample at its start, or that hour is unknown (as after a real gap)
        lambda: prom.query(f'count_over_time(pinpointe_up{{account="{ACCOUNT}"}}[1m]) >= 13'),
        "13 scrapes of the T0 figures",
    )

    # -- phase B: 6 simulated hours later, frozen again --------------------------------
    clock.now += SIMULATED_STEP
    jumped = time.time()
    f1 = api_figures(sim)
    assert all(f1[i]["recipients"] >= f0[i]["recipients"] for i in ids)
    assert any(f1[i]["recipients"] > f0[i]["recipients"] for i in ids)
    eventually(lambda: holds(f1), "Prometheus to hold the T1 figures")

    check_recording_rules(prom, f0, f1)
    check_dashboards(prom, sim, stack["started"], jumped)
    check_credentials_alert(sim, webhook)


def check_recording_rules(prom: Prometheus, f0: Figures, f1: Figures) -> None:
    ids = sorted(f1)
    sel = f'{{account="{ACCOUNT}"}}'

    # lifetime ratios per autoresponder and per account: the simulator's figures at T1
    def lifetime_ratios() -> bool:
        for stem, (num, den) in RATIOS.items():
            expected = {i: r for i in ids if (r := ratio(f1[i][num], f1[i][den])) is not None}
            got = prom.by_autoresponder(
                f"account_autoresponder:pinpointe_autoresponder_{stem}:ratio{sel}"
            )
            assert got.keys() == expected.keys(), (stem, got, expected)
            for i in ids:
                if i in expected:
                    assert close(got[i], expected[i]), (stem, i, got[i], expected[i])
            total = ratio(sum(f1[i][num] for i in ids), sum(f1[i][den] for i in ids))
            account = prom.by_account(f"account:pinpointe_autoresponder_{stem}:ratio{sel}")
            assert total is not None and close(account[ACCOUNT], total), (stem, account, total)
        return True

    eventually(lifetime_ratios, "the lifetime ratio rules to equal the simulator's ratios")

    # 24 h: every figure grew from its T0 to its T1 value inside the (scaled) window;
    # the hourly two-point differences sum to exactly that growth.
    delta = {i: {k: f1[i][k] - f0[i][k] for k in FIELDS} for i in ids}

    def volumes_24h() -> bool:
        for key in VOLUMES_24H:
            got = prom.by_autoresponder(
                f"account_autoresponder:pinpointe_autoresponder_{key}:delta24h{sel}"
            )
            assert got == {i: float(delta[i][key]) for i in ids}, (key, got)
            if key == "unique_clicks":  # recorded per autoresponder only
                continue
            account = prom.by_account(f"account:pinpointe_autoresponder_{key}:delta24h{sel}")
            assert account == {ACCOUNT: float(sum(delta[i][key] for i in ids))}, (key, account)
        return True

    eventually(volumes_24h, "the 24 h volumes to equal the simulator's growth")

    def ratios_24h() -> bool:
        for stem in RATIOS_24H:
            num, den = RATIOS[stem]
            expected = {i: r for i in ids if (r := ratio(delta[i][num], delta[i][den])) is not None}
            got = prom.by_autoresponder(
                f"account_autoresponder:pinpointe_autoresponder_{stem}:ratio_delta24h{sel}"
            )
            assert got.keys() == expected.keys(), (stem, got, expected)
            for i in expected:
                assert close(got[i], expected[i]), (stem, i, got[i], expected[i])
        return True

    eventually(ratios_24h, "the 24 h ratio rules to equal the simulator's growth ratios")


def check_dashboards(prom: Prometheus, sim: Simulator, started: float, jumped: float) -> None:
    """Every query of every panel and variable returns data (issue 21: no panel is
    empty in the default, unsharded setup)."""
    records = sim.records(USERNAME)
    names = {str(record["autoresponderid"]): record["autorespondername"] for record in records}
    first_id = sorted(names)[0]
    values = {
        "account": regex_value(ACCOUNT),
        "autoresponder": regex_value(first_id),
        "job": JOB,
        "__rate_interval": "10s",
        "__interval": "1s",
    }
    all_values = {**values, "account": ".+", "autoresponder": ".+"}  # "All" (allValue)

    def time_range(substitution: dict[str, str]) -> dict[str, str]:
        """$__range is the dashboard's time range, here one that starts a little before
        the T0 -> T1 jump (phase A holds 13 s of T0 samples), so the figures grew in it
        however long the checks before this one took."""
        reach = math.ceil(time.time() - jumped) + JUMP_MARGIN_SECONDS
        return {**substitution, "__range": f"{reach}s"}

    checked = 0
    for dash in dashboards():
        for variable in dash["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]["query"]
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            if match:
                selector = substitute(match.group(1), all_values)
                found = {s.get(match.group(2)) for s in prom.series(selector)} - {None}
            else:
                # query_result(<expr>) with a regex picking the value and the text
                inner = re.fullmatch(r"query_result\((.*)\)", query, re.DOTALL)
                assert inner, query
                regex = re.compile(variable["regex"].strip("/").replace("(?<", "(?P<"))
                found = set()
                for s in prom.query(substitute(inner.group(1), all_values)):
                    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(s["metric"].items()))
                    m = regex.search(f"{{{labels}}} {s['value'][1]} {s['value'][0]}")
                    assert m, labels
                    assert m.group("text") == names[m.group("value")], labels
                    found.add(m.group("value"))
            assert found, f"{dash['title']}: variable {variable['name']} has no values"
            expected = {"account": {ACCOUNT}, "autoresponder": set(names), "job": {JOB}}
            assert found == expected[variable["name"]], (variable["name"], found)
        for panel in iter_panels(dash):
            for target in panel.get("targets", []):
                for substitution in (values, all_values):
                    expr = substitute(target["expr"], time_range(substitution))
                    assert "$" not in expr, expr
                    if target["instant"]:
                        result = prom.query(expr)
                    else:
                        result = prom.query_range(expr, started, time.time())
                    assert result, (
                        f"{dash['title']} / {panel['title']} / {target['refId']} "
                        f"returned no series:\n{expr}"
                    )
                    checked += 1
    assert checked >= 60, checked


def check_credentials_alert(sim: Simulator, webhook: Webhook) -> None:
    name = "PinpointeCredentialsRejected"
    assert webhook.alerts(name, "firing") == []
    sim.set_fault(USERNAME, "auth")
    (firing, *_) = eventually(
        lambda: webhook.alerts(name, "firing"), f"{name} to reach the webhook"
    )
    labels = firing["labels"]
    assert {k: labels[k] for k in ("alertname", "account", "severity", "reason", "job")} == {
        "alertname": name,
        "account": ACCOUNT,
        "severity": "critical",
        "reason": "auth",
        "job": JOB,
    }
    assert firing["annotations"]["summary"] == (
        f"Pinpointe rejected the credentials of account {ACCOUNT}"
    )
    assert f"for account {ACCOUNT}:" in firing["annotations"]["description"]
    sim.set_fault(USERNAME, None)
    (resolved, *_) = eventually(
        lambda: webhook.alerts(name, "resolved"), f"{name} to resolve at the webhook"
    )
    assert resolved["labels"] == labels
