"""What the end-to-end test checks, each against the simulator's own figures: the
recording rules, every dashboard query, the emails of a complaint alert and the
webhook of a rejected token (tests/test_e2e_alerting.py runs the stack)."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from email.message import EmailMessage

import requests

from exporter.simulator import Simulator
from tests.integration.dashboard_queries import dashboards, iter_panels, substitute
from tests.integration.e2e_support import Prometheus, SmtpSink, Webhook, eventually

ACCOUNT = "acme"
USERNAME = "demo"
TOKEN = "demo-token"
JOB = "pinpointe"
JUMP_MARGIN_SECONDS = 3  # less than phase A's 13 s of T0 samples before the jump
GRAFANA = "http://grafana.test:3000"
RUNBOOKS = "https://github.com/pinpointe-exporter/pinpointe-exporter/blob/main/docs/runbooks.md"

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


def account_complaint_rate(f0: Figures, f1: Figures) -> float:
    """What the account's 24 h complaint ratio reads once the T0 -> T1 growth is in it."""
    grown = {k: sum(f1[i][k] - f0[i][k] for i in f0) for k in ("complaints", "recipients")}
    assert grown["complaints"] > 0, grown
    return grown["complaints"] / grown["recipients"]


def humanize_percentage(value: float) -> str:
    """Prometheus' humanizePercentage (Go's %.4g)."""
    return f"{value * 100:.4g}%"


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


def check_complaint_emails(smtp: SmtpSink, rate: float, threshold: float, started: float) -> None:
    """The account's critical complaint alert, as the two audiences read it."""
    anchor = f"{RUNBOOKS}#pinpointeaccountcomplaintratecritical"

    def delivered(to: str) -> EmailMessage:
        (message, *_) = [m for m in smtp.received(to) if anchor in text_of(m)]
        return message

    marketing = eventually(lambda: delivered("email-marketing@"), "the email to marketing")
    on_call = eventually(lambda: delivered("on-call@"), "the page to on-call")
    figure = (
        f"account complaint rate {humanize_percentage(rate)} over the last 24 h, "
        f"above {humanize_percentage(threshold)}; mailbox providers start filtering at 0.3%"
    )
    dashboard = f"{GRAFANA}/d/pinpointe-autoresponders?var-account={ACCOUNT}"
    percent = f"{threshold * 100:.12g} %"
    assert (
        marketing["Subject"]
        == f"Spam-complaint rate of Pinpointe account {ACCOUNT} above {percent}"
    )
    body = text_of(marketing)
    print(f"--- the email to marketing ---\nSubject: {marketing['Subject']}\n\n{body}")
    assert f"attention in Pinpointe account {ACCOUNT}.\n" in body
    assert f"What we see:    {figure}\n" in body
    assert f"Dashboard:      {dashboard}\n" in body
    assert f"What to do:     {anchor}\n" in body
    (since,) = re.findall(r"Since: +(.+ UTC)\n", body)
    fired = datetime.strptime(since, "%a %d %b %Y %H:%M UTC").replace(tzinfo=UTC).timestamp()
    assert started - 60 <= fired <= time.time(), since
    page = text_of(on_call)
    assert (
        on_call["Subject"] == f"[FIRING:1] PinpointeAccountComplaintRateCritical, account {ACCOUNT}"
    )
    assert "FIRING PinpointeAccountComplaintRateCritical (critical)\n" in page
    assert f"Figure:    {figure}\n" in page
    assert f"Labels:    account={ACCOUNT}\n" in page
    assert f"Dashboard: {dashboard}\n" in page


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    return str(part.get_content()).replace("\r\n", "\n")
