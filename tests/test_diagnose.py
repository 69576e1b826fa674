"""First-contact diagnoses: each with its exact message."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests

from exporter.collector import FieldMapper
from exporter.config import ConfigError, parse_config
from exporter.simulator import SimAccount, Simulator
from exporter.snapshot import DEFAULT_FIELDS
from tests.conftest import ExporterProcess, account_config, run_exporter, wait_for, write_config
from tests.oddserver import poll_odd_server

StartSimulator = Callable[..., Simulator]
StartExporter = Callable[..., ExporterProcess]
TOKEN = "tok-d1a9e0c4b7"
CHECK_API_URL = "check api_url: it should be the apijson.php URL of the host you log in on"


def once(sim: Simulator, tmp_path: Path, **account: object) -> tuple[int, str, str]:
    config = {"accounts": [account_config(sim, token=TOKEN, **account)]}
    path = write_config(tmp_path / "c.yaml", config)
    result = run_exporter(f"--config.file={path}", "--once")
    assert TOKEN not in result.stdout + result.stderr
    return result.returncode, result.stdout, result.stderr


# -- request_type ---------------------------------------------------------------------
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


# -- figures --------------------------------------------------------------------------
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


def test_field_map_wins_over_the_default_fields() -> None:
    mapper = FieldMapper((("HTMLOpens", "opens"),))
    record = mapper.normalise(
        {"id": "1", "emailopens": "5", "htmlopens": "9"}, per_send=False
    ).record
    assert record is not None and dict(record.values)["opens"] == 9
    fallback = mapper.normalise({"id": "1", "emailopens": "5"}, per_send=False).record
    assert fallback is not None and dict(fallback.values)["opens"] == 5


# -- api_url --------------------------------------------------------------------------
def answer(status: int, body: bytes, content_type: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(404, "Not Found"), (405, "Method Not Allowed"), (501, "Not Implemented")],
)
def test_a_wrong_url_status_says_check_api_url(status: int, phrase: str) -> None:
    error = poll_odd_server(answer(status, b"<html>nope</html>", "text/html"))
    assert error.reason == "http"
    assert error.message.endswith(
        f"/apijson.php answered HTTP {status} ({phrase}); {CHECK_API_URL}"
    )


def test_an_html_page_says_check_api_url() -> None:
    error = poll_odd_server(answer(200, b"<!DOCTYPE html><html>login</html>", "text/html"))
    assert error.reason == "invalid_response"
    assert error.message.endswith(f"; {CHECK_API_URL}")
    assert "HTTP 200 with a body that is not JSON" in error.message


def test_json_that_is_not_an_envelope_says_check_api_url() -> None:
    error = poll_odd_server(answer(200, b'{"ok": true, "items": []}', "application/json"))
    assert (error.reason, error.message) == (
        "invalid_response",
        f"the response has no status field; {CHECK_API_URL}",
    )


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


# -- the configuration ----------------------------------------------------------------
def config_text(**account: str) -> str:
    item = {"name": "acme", "api_url": "https://x.example/apijson.php", "username": "u", **account}
    return json.dumps({"accounts": [item]})


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (
            "$PINPOINTE_TOKEN",
            "$PINPOINTE_TOKEN is not expanded: write ${PINPOINTE_TOKEN} (with braces) to read "
            "the environment variable PINPOINTE_TOKEN",
        ),
        ("xxxxxxxxxxxxxxxx", "looks like a placeholder"),
        ("<your usertoken>", "looks like a placeholder"),
        ("replace-with-your-usertoken", "looks like a placeholder"),
        ("${NESTED}", "holds an unexpanded ${...} reference, not a token"),
    ],
)
def test_placeholder_tokens_are_refused(token: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(config_text(usertoken="${T}"), "c.yaml", {"T": token})
    assert str(raised.value).startswith(f"c.yaml: accounts[0].usertoken: {problem}")
    assert token not in str(raised.value) or token.startswith("$")


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


def test_a_placeholder_in_a_token_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("xxxxxxxxxxxx\n")
    with pytest.raises(ConfigError) as raised:
        parse_config(config_text(usertoken_file="token"), str(tmp_path / "c.yaml"), {})
    assert "accounts[0].usertoken_file: token: looks like a placeholder" in str(raised.value)


def test_environment_variables_in_durations_and_numbers() -> None:
    text = json.dumps(
        {
            "poll_interval": "${INTERVAL}",
            "max_concurrency": "${CONCURRENCY}",
            "accounts": [
                {
                    "name": "acme",
                    "api_url": "https://x.example/apijson.php",
                    "username": "u",
                    "usertoken": "tok-real-1234",
                    "page_size": "${PAGE_SIZE}",
                    "poll_interval": "${INTERVAL}",
                }
            ],
        }
    )
    env = {"INTERVAL": "2m", "CONCURRENCY": "2", "PAGE_SIZE": "250"}
    settings = parse_config(text, "c.yaml", env)
    assert (settings.poll_interval, settings.max_concurrency) == (120, 2)
    assert (settings.accounts[0].page_size, settings.accounts[0].poll_interval) == (250, 120)
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "c.yaml", {**env, "PAGE_SIZE": "lots"})
    assert str(raised.value) == (
        "c.yaml: accounts[0].page_size: must be an integer, got 'lots' from the environment"
    )


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
