"""End to end: simulator -> exporter -> Prometheus (the project's rules) -> Alertmanager
(the project's routes and notification templates) -> a webhook and an SMTP server
inside this test. Real processes on 127.0.0.1, random free ports.

What it proves, with values rather than timings:
  * every PromQL expression of every dashboard panel and variable returns data;
  * the recording rules equal the ratios computed from the simulator's own figures,
    fetched from its API with the body the exporter sends;
  * a firing account complaint alert reaches on-call and marketing as emails whose
    subject and body carry the account, the rate against its threshold, since when,
    the runbook and the dashboard (Alertmanager delivers them over SMTP);
  * a token rejected by Pinpointe reaches the webhook as PinpointeCredentialsRejected
    and resolves once the token is accepted again.

The simulator's clock is frozen at T0, then jumped 6 simulated hours to T1 and frozen
again, so every figure Prometheus ever holds is one of two known snapshots.
The rules and alerts are loaded from time-scaled copies (tests/integration/e2e_support.py): every
window, offset and group interval divided by 360, so the rules' hour lasts 10 s and
their 24 h window 4 minutes, and `for:` and `keep_firing_for:` are 0s. rules.yml is the
shipped file; alerts.yml is the mixin rendered with the account complaint thresholds
just under the rate the simulator's figures make, and a Grafana URL of its own, so
that the critical tier must fire. The expressions are otherwise the shipped ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.simulator import SimAccount, Simulator
from tests.conftest import ROOT, require_tool
from tests.integration.e2e_checks import (
    ACCOUNT,
    GRAFANA,
    JOB,
    TOKEN,
    USERNAME,
    Figures,
    account_complaint_rate,
    api_figures,
    check_complaint_emails,
    check_credentials_alert,
    check_dashboards,
    check_recording_rules,
)
from tests.integration.e2e_support import (
    Clock,
    Process,
    Prometheus,
    SmtpSink,
    Webhook,
    eventually,
    free_port,
    scaled_rule_file,
)
from tests.integration.scripts import render_module

INSTALL = "apt-get install prometheus prometheus-alertmanager"
SIMULATED_STEP = 6 * 3600.0


def binary(name: str) -> str:
    return require_tool(name, INSTALL)


# ---- the stack -----------------------------------------------------------------------


def alertmanager_config(webhook: Webhook, smtp: SmtpSink) -> dict[str, Any]:
    """The shipped routes, receivers and templates, delivering to this test's SMTP
    server at once, plus every alert to the webhook."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "prometheus" / "alertmanager.yml").read_text())
    config["global"].update(smtp_smarthost=smtp.address, smtp_require_tls=False)
    config["templates"] = [str(ROOT / "prometheus" / "notifications.tmpl")]
    route = config["route"]
    for each in [route, *route["routes"]]:
        each.update(group_wait="1s", group_interval="1s")
    route["routes"].insert(0, {"receiver": "webhook", "continue": True})
    config["receivers"].append(
        {"name": "webhook", "webhook_configs": [{"url": webhook.url, "send_resolved": True}]}
    )
    return config


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
    clock.now += SIMULATED_STEP  # a look at T1 before any of it is served
    rate = account_complaint_rate(figures_t0, api_figures(sim))
    clock.now -= SIMULATED_STEP
    # two significant digits under the rate: the critical tier (and the warning tier,
    # which it inhibits) must fire
    threshold = float(f"{rate * 0.8:.2g}")
    alerts = render_module().files(
        render_module().evaluate(
            f"{{ complaintRateCritical: {threshold}, complaintRateWarning: {threshold},"
            " accountComplaintMinRecipients24h: 1, accountComplaintMinComplaints24h: 1,"
            f" grafanaURL: '{GRAFANA}' }}"
        )
    )["prometheus/alerts.yml"]
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
    smtp = SmtpSink()
    processes: list[Process] = []
    try:
        am_port = free_port()
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(alertmanager_config(webhook, smtp)))
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
        fast_alerts = scaled_rule_file(alerts, tmp_path / "alerts-fast.yml")
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
            "smtp": smtp,
            "exporter": exp,
            "figures_t0": figures_t0,
            "complaints": (rate, threshold),
            "started": time.time(),
            "processes": processes,
        }
    finally:
        for process in reversed(processes):
            process.stop()
        webhook.stop()
        smtp.stop()


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
    rate, threshold = stack["complaints"]
    check_complaint_emails(stack["smtp"], rate, threshold, stack["started"])
    check_credentials_alert(sim, webhook)
