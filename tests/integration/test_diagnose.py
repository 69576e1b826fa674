"""First-contact diagnoses of a running exporter: the request_type probe, records without
recognised figures, plain HTTP on an https URL, each with its exact message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.simulator import SimAccount, Simulator
from exporter.snapshot import DEFAULT_FIELDS
from tests.conftest import (
    StartExporter,
    StartSimulator,
    account_config,
    config_text,
    run_exporter,
    wait_for,
    write_config,
)

TOKEN = "tok-d1a9e0c4b7"


def once(sim: Simulator, tmp_path: Path, **account: Any) -> tuple[int, str, str]:
    config = {"accounts": [account_config(sim, token=TOKEN, **account)]}
    path = write_config(tmp_path / "c.yaml", config)
    result = run_exporter(f"--config.file={path}", "--once")
    assert TOKEN not in result.stdout + result.stderr
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (400, "Pinpointe answered HTTP 400: Unknown requesttype 'Stats'"),
        (
            200,
            "Pinpointe refused the request: Unknown requesttype 'Stats'; check request_type, "
            "the API being enabled for the account and the autoresponder selection",
        ),
    ],
)
def test_a_refused_request_type_is_probed_once(
    simulator: StartSimulator, tmp_path: Path, status: int, said: str
) -> None:
    sim = simulator(
        SimAccount(
            token=TOKEN,
            autoresponders=3,
            request_types=("Autoresponders",),
            request_type_refusal_status=status,
        )
    )
    code, stdout, stderr = once(sim, tmp_path)
    assert code == 0, stderr
    assert (
        f"request_type Stats was refused as unknown ({said}); Autoresponders works and is used "
        "from now on: pin it with request_type: Autoresponders in the configuration"
    ) in stderr
    assert sim.request_count() == 2
    assert [seen["requesttype"] for seen in sim.seen] == ["Autoresponders"]
    assert 'pinpointe_up{account="acme"} 1' in stdout


def test_an_explicit_request_type_is_never_probed(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=3, request_types=("Autoresponders",)))
    code, _, stderr = once(sim, tmp_path, request_type="Stats")
    assert code == 1
    assert "Pinpointe answered HTTP 400: Unknown requesttype 'Stats'" in stderr
    assert "pin it" not in stderr
    assert sim.request_count() == 1


RENAMED = {api: f"x_{api}" for apis in DEFAULT_FIELDS.values() for api in apis}


def test_records_without_recognised_figures_are_explained_once_and_on_the_status_page(
    simulator: StartSimulator, exporter: StartExporter
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=3, renamed_fields=RENAMED))
    config = {
        "poll_interval": "1s",
        "stale_after": "1m",
        "accounts": [account_config(sim, token=TOKEN)],
    }
    handle = exporter(config)
    wait_for(lambda: sim.request_count() >= 3, what="three polls")
    expected = (
        "account acme returned 3 records with no recognised figures; numeric fields seen: "
        "htmlopens, x_bouncecount_hard, x_bouncecount_soft, x_bouncecount_unknown, "
        "x_emailforwards, x_emailopens, x_emailopens_unique, x_feedbackloopcount, "
        "x_linkclicks, x_linkclicks_unique …; map the ones that hold engagement figures with "
        "field_map: {htmlopens: opens} (targets: recipients, opens, unique_opens, clicks, "
        "unique_clicks, forwards, unsubscribes, bounces_soft, bounces_hard, bounces_unknown, "
        "complaints)"
    )
    logs = handle.logs()
    assert logs.count("no recognised figures") == 1
    assert "level=warn" in next(line for line in logs.splitlines() if "recognised" in line)
    assert expected in logs
    status = handle.get("/api/v1/status").json()
    assert status["accounts"][0]["hints"] == [expected]
    page = handle.get("/").text
    assert "no recognised figures" in page


def test_partial_coverage_names_the_metrics_never_fed(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    renamed = {"emailforwards": "forwardcount"}
    sim = simulator(SimAccount(token=TOKEN, autoresponders=2, renamed_fields=renamed))
    code, _, stderr = once(sim, tmp_path)
    assert code == 0
    assert (
        "account acme: no record carried forwards; numeric fields not mapped: forwardcount, "
        "htmlopens; if one of them holds such a figure, map it with "
        "field_map: {forwardcount: opens}"
    ) in stderr
    assert "level=warn" in next(line for line in stderr.splitlines() if "forwardcount" in line)


def test_https_answered_in_plain_http_says_so(simulator: StartSimulator, tmp_path: Path) -> None:
    sim = simulator(SimAccount(token=TOKEN))
    url = sim.url.replace("http://", "https://")
    code, _, stderr = once(sim, tmp_path, api_url=url)
    assert code == 1
    assert (
        f"{url} answered in plain HTTP, not HTTPS: use an http:// api_url if the server "
        "really serves plain HTTP, or check the host and port"
    ) in stderr
    assert "]" not in stderr


def test_once_never_says_it_will_retry(simulator: StartSimulator, tmp_path: Path) -> None:
    sim = simulator(SimAccount(token=TOKEN))
    sim.set_fault("demo", "http_500")
    code, _, stderr = once(sim, tmp_path)
    assert code == 1
    assert "Pinpointe answered HTTP 500 (Internal Server Error)" in stderr
    assert "retr" not in stderr and "next_attempt" not in stderr


def test_a_placeholder_is_flagged_by_config_check_and_at_start(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(config_text(usertoken="$PINPOINTE_TOKEN"))
    expected = (
        f"error: {path}: accounts[0].usertoken: $PINPOINTE_TOKEN is not expanded: write "
        "${PINPOINTE_TOKEN} (with braces) to read the environment variable PINPOINTE_TOKEN\n"
    )
    for mode in ("--config.check", "--web.listen-address=127.0.0.1:0"):
        result = run_exporter(f"--config.file={path}", mode)
        assert (result.returncode, result.stderr) == (2, expected), mode


def test_demo_config_check_does_not_claim_a_file_was_validated() -> None:
    result = run_exporter("--demo", "--config.check")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == "--demo: no configuration file was read; the demo polls the built-in simulator"
    assert "config.yaml" not in result.stdout


def test_status_shows_the_request_type_in_use(
    simulator: StartSimulator, exporter: StartExporter
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=2, request_types=("Autoresponders",)))
    handle = exporter({"accounts": [account_config(sim, token=TOKEN)]})
    status = handle.get("/api/v1/status").json()["accounts"][0]
    assert status["request_type"] == "Autoresponders"
    assert status["hints"][0].startswith("request_type Stats was refused as unknown")
    assert requests.get(handle.url + "/", timeout=10).text.count("pin it with request_type") == 1
