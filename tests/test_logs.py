"""Log lines: logfmt and JSON, one line per event, every registered secret redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from exporter import logs

SECRET = "tok-logs-8c1f2a"


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger as logs.setup leaves it; restored (with the secrets) afterwards."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    secrets, registered = dict(logs._secrets), logs._registered
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logs._secrets.clear()
    logs._secrets.update(secrets)
    logs._registered = registered


def emit(
    capsys: pytest.CaptureFixture[str], log_format: str, level: str = "info", **fields: object
) -> list[str]:
    logs.setup(level, log_format)
    log = logging.getLogger("exporter.test")
    log.info("poll succeeded", extra={"fields": fields})
    return capsys.readouterr().err.splitlines()


def test_logfmt_line(root: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    [line] = emit(capsys, "logfmt", account="acme", records=12, duration_seconds=0.25)
    ts, rest = line.split(" ", 1)
    assert ts.startswith("ts=") and ts.endswith("Z") and len(ts) == len("ts=") + 24
    assert rest == (
        'level=info logger=exporter.test msg="poll succeeded" account=acme records=12 '
        "duration_seconds=0.25"
    )


def test_logfmt_quotes_and_escapes_what_needs_it() -> None:
    assert logs.logfmt({"a": "plain", "b": "two words", "c": 'say "hi"', "d": "x\ny"}) == (
        'a=plain b="two words" c="say \\"hi\\"" d="x\\ny"'
    )
    assert logs.logfmt({"e": "", "f": 1.0, "g": 0.1234, "h": "a\\b", "i": "k=v"}) == (
        'e="" f=1 g=0.123 h="a\\\\b" i="k=v"'
    )


def test_json_line(root: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    [line] = emit(capsys, "json", account="acme", records=12)
    fields = json.loads(line)
    assert fields.pop("ts").endswith("Z")
    assert fields == {
        "level": "info",
        "logger": "exporter.test",
        "msg": "poll succeeded",
        "account": "acme",
        "records": 12,
    }


def test_levels_and_exceptions(root: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("warn", "json")
    log = logging.getLogger("exporter.test")
    log.info("not shown")
    log.warning("shown")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["level"], x["msg"]) for x in lines] == [("warn", "shown"), ("error", "failed")]
    assert "ValueError: boom" in lines[1]["exception"]


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_registered_secrets_are_redacted_wherever_they_appear(
    root: logging.Logger, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    logs.register_secret(SECRET)
    logs.setup("debug", log_format)
    log = logging.getLogger("exporter.test")
    log.error(f"request failed: usertoken={SECRET}", extra={"fields": {"body": f"[{SECRET}]"}})
    try:
        raise RuntimeError(f"echo {SECRET}")
    except RuntimeError:
        log.exception("failed")
    output = capsys.readouterr().err
    assert SECRET not in output
    assert output.count(logs.REDACTED) == 3
    assert len(output.splitlines()) == 2  # a traceback stays on its line


def test_secrets_are_redacted_in_any_letter_case(
    root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.register_secret(SECRET)
    logs.setup("info", "logfmt")
    folded = (SECRET.upper(), "Tok-Logs-8C1F2A", SECRET)
    logging.getLogger("exporter.test").warning(" ".join(f"[{form}]" for form in folded))
    output = capsys.readouterr().err
    assert output.count(f"[{logs.REDACTED}]") == 3 and "8c1f2a" not in output.lower()
    assert logs.redact(f"HTTP 400: {SECRET.upper()}") == f"HTTP 400: {logs.REDACTED}"


def test_values_too_short_to_be_tokens_are_not_masked(
    root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.register_secret("x" * (logs.MIN_SECRET_LENGTH - 1))
    [line] = emit(capsys, "logfmt", account="xxxxx")
    assert "account=xxxxx" in line and logs.REDACTED not in line
