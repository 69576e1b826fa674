"""First-contact diagnoses checked in-process: wrong URLs, placeholders, field_map, each
with its exact message."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from exporter.collector import FieldMapper
from exporter.config import ConfigError, parse_config
from tests.conftest import config_text
from tests.integration.oddserver import poll_odd_server

CHECK_API_URL = "check api_url: it should be the apijson.php URL of the host you log in on"


def test_field_map_wins_over_the_default_fields() -> None:
    mapper = FieldMapper((("HTMLOpens", "opens"),))
    record = mapper.normalise(
        {"id": "1", "emailopens": "5", "htmlopens": "9"}, per_send=False
    ).record
    assert record is not None and dict(record.values)["opens"] == 9
    fallback = mapper.normalise({"id": "1", "emailopens": "5"}, per_send=False).record
    assert fallback is not None and dict(fallback.values)["opens"] == 5


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
