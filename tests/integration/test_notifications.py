"""prometheus/notifications.tmpl: what a person receives when an alert fires.

Golden tests render each template with Debian's amtool (`amtool template render`,
Alertmanager 0.25) on the data Alertmanager gives a template
(tests/integration/golden/notifications/*.json), and compare with the *.txt beside it
(UPDATE_GOLDEN=1 rewrites those). tests/test_e2e_alerting.py sends a real email."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SYSTEM_DEPS, require_tool

TEMPLATES = ROOT / "prometheus" / "notifications.tmpl"
GOLDEN = Path(__file__).resolve().parent / "golden" / "notifications"
RUNBOOKS = "https://github.com/pinpointe-exporter/pinpointe-exporter/blob/main/docs/runbooks.md#"
# template data -> the templates of the receivers it goes to
CASES = {
    "autoresponder_complaints": ("marketing.subject", "marketing.text"),
    "account_critical": ("marketing.subject", "marketing.text", "oncall.subject", "oncall.text"),
    "exporter_down_resolved": ("oncall.subject", "oncall.text"),
}


def render(case: str, template: str) -> str:
    proc = subprocess.run(
        [
            require_tool("amtool", SYSTEM_DEPS),
            "template",
            "render",
            f"--template.glob={TEMPLATES}",
            f"--template.data={GOLDEN / f'{case}.json'}",
            f'--template.text={{{{ template "pinpointe.{template}" . }}}}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    ("case", "template"),
    [(case, template) for case, templates in CASES.items() for template in templates],
)
def test_rendering_is_the_golden_one(case: str, template: str) -> None:
    text = render(case, template)
    golden = GOLDEN / f"{case}.{template}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"{golden.name}: UPDATE_GOLDEN=1 rewrites it"


def test_marketing_email_tells_each_autoresponder_its_figure_since_when_and_where_to_look() -> None:
    subject = render("autoresponder_complaints", "marketing.subject")
    body = render("autoresponder_complaints", "marketing.text")
    # two autoresponders: the subject names the alert and the account, not one of them
    assert subject == "PinpointeHighComplaintRate: 2 autoresponders of Pinpointe account acme"
    assert body.startswith("2 problems need attention in Pinpointe account acme.\n")
    for name, ident, rate, since in (
        ("Complainers", 7, "0.3472%", "Wed 4 Mar 2026 09:30 UTC"),
        ("Bad import", 15, "0.2778%", "Wed 4 Mar 2026 11:00 UTC"),
    ):
        block = body.split(f"Autoresponder:  {name} (id {ident})\n")[1].split("\n\n")[0]
        assert f"What we see:    spam-complaint rate {rate} over the last 24 h;" in block
        assert "the alert fires above 0.1%" in block
        assert f"Since:          {since}" in block
        assert f"var-account=acme&var-autoresponder={ident}\n" in block
        assert f"What to do:     {RUNBOOKS}pinpointehighcomplaintrate" in block
    assert "fingerprint" not in body and "severity" not in body, "no label dump for marketing"


def test_a_page_reads_for_an_engineer() -> None:
    subject = render("account_critical", "oncall.subject")
    body = render("account_critical", "oncall.text")
    assert subject == "[FIRING:1] PinpointeAccountComplaintRateCritical, account beta"
    assert "FIRING PinpointeAccountComplaintRateCritical (critical)\n" in body
    assert "Figure:    account complaint rate 2.083% over the last 24 h, above 0.3%;" in body
    assert "Labels:    account=beta\n" in body
    assert "Source:    http://prometheus:9090/graph?g0.expr=" in body
    resolved = render("exporter_down_resolved", "oncall.text")
    assert render("exporter_down_resolved", "oncall.subject") == (
        "[RESOLVED] PinpointeExporterDown, job pinpointe"
    )
    assert resolved.startswith("RESOLVED PinpointeExporterDown at Wed 4 Mar 2026 02:45 UTC:")


def test_both_receivers_send_email_written_by_the_templates() -> None:
    config = yaml.safe_load((ROOT / "prometheus" / "alertmanager.yml").read_text())
    assert config["templates"] == ["notifications.tmpl"], "loaded from beside the config"
    receivers = {r["name"]: r for r in config["receivers"]}
    for name, audience in (("email-marketing", "marketing"), ("on-call", "oncall")):
        (email,) = receivers[name]["email_configs"]
        assert email["headers"]["Subject"] == f'{{{{ template "pinpointe.{audience}.subject" . }}}}'
        assert email["text"] == f'{{{{ template "pinpointe.{audience}.text" . }}}}'
        assert email["html"] == "", "plain text only: the default HTML would dump labels"
    assert receivers["on-call"]["email_configs"][0]["send_resolved"] is True


def test_compose_mounts_the_templates_beside_the_config() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    mounts = {
        volume["target"]: (ROOT / "deploy" / volume["source"]).resolve()
        for volume in compose["services"]["alertmanager"]["volumes"]
        if isinstance(volume, dict)
    }
    config = Path("/etc/alertmanager/alertmanager.yml")
    assert mounts[str(config)] == ROOT / "prometheus" / "alertmanager.yml"
    assert mounts[str(config.parent / "notifications.tmpl")] == TEMPLATES
