"""The usertoken appears nowhere, whatever Pinpointe does.

Every simulator fault runs against a distinctive token, and the token is looked for in
everything the exporter shows: logs in both formats (at debug level), every HTTP
endpoint in both exposition formats, --once and --config.check output, and the full
text of every exception the client raises (redaction at the source, without the log
formatter's last line of defence). One fault, ``echo_token``, quotes the request
(token included) back in its error message, so redaction really has something to do.
"""

from __future__ import annotations

import gzip
import json
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.collector import AccountFetcher
from exporter.pinpointe import PinpointeClient, PollError
from exporter.simulator import SimAccount, Simulator
from exporter.simulator.faults import FAULTS
from tests.conftest import (
    ExporterProcess,
    account_settings,
    run_exporter,
    spawn_exporter,
    write_config,
)

TOKEN = "PPtok-7f3a9c1e5b2d4a6f8e0c"
# Quick versions of the slow faults: no request is meant to time out, however slow the
# machine (a timed-out echo_token would have nothing for redaction to do).
PARAMS: dict[str, dict[str, Any]] = {
    "latency": {"seconds": 0.2},
    "hang": {"seconds": 1},
    "trickle_headers": {"interval": 0.001},
    "rate_limited": {"retry_after": 1},
    "http_503": {"retry_after": 1},
    "big_response": {"bytes": 300_000},
    "scripted": {"pages": [[5, 5], [5, 0]]},
}
# 10,000 requests before the page cap: run in-process with a cap of 20 instead.
SLOW = {"pagination_endless"}
PROCESS_FAULTS = [f for f in FAULTS if f not in SLOW]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    accounts = [SimAccount(username=f, token=TOKEN, autoresponders=12) for f in FAULTS]
    simulator = Simulator(accounts).start()
    for fault in FAULTS:
        simulator.set_fault(fault, fault, **PARAMS.get(fault, {}))
    yield simulator
    simulator.stop()


def config_for(sim: Simulator, faults: list[str]) -> dict[str, Any]:
    return {
        "poll_interval": "1s",
        "stale_after": "1m",
        "max_concurrency": len(faults),
        "accounts": [
            {
                "name": fault,
                "api_url": sim.url,
                "username": fault,
                "usertoken": TOKEN,
                "page_size": 5,
                "groupings": ["autoresponder", "send"],
            }
            for fault in faults
        ],
    }


def assert_clean(text: str, where: str) -> None:
    assert TOKEN not in text, f"the token appears in {where}"
    assert TOKEN[:12] not in text, f"part of the token appears in {where}"


def everything_served(handle: ExporterProcess) -> str:
    texts = []
    for path in ("/metrics", "/", "/-/healthy", "/-/ready", "/nope"):
        texts.append(handle.get(path).text)
    openmetrics = {"Accept": "application/openmetrics-text; version=1.0.0"}
    texts.append(handle.get("/metrics", headers=openmetrics).text)
    raw = requests.get(
        handle.url + "/metrics", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10
    )
    texts.append(gzip.decompress(raw.raw.read()).decode())
    return "\n".join(texts)


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_token_never_in_logs_or_endpoints(sim: Simulator, tmp_path: Path, log_format: str) -> None:
    args = (f"--log.format={log_format}", "--log.level=debug")
    handle = spawn_exporter(tmp_path, config_for(sim, PROCESS_FAULTS), *args)
    try:
        served = everything_served(handle)
        assert "pinpointe_poll_errors_total" in served
        assert_clean(served, "what the exporter serves")
    finally:
        assert handle.stop() == 0
    logs = handle.logs()
    if log_format == "json":
        lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
        errors = {line["account"] for line in lines if line["level"] == "error"}
    else:
        lines = logs.splitlines()
        errors = {
            part.split("=", 1)[1]
            for line in lines
            if line.startswith("ts=") and " level=error " in line
            for part in line.split()
            if part.startswith("account=")
        }
    # every failing fault was logged, and the echoing one says its redacted request
    assert {"auth", "echo_token", "hang", "reset", "truncated", "rate_limited"} <= errors
    assert "<redacted>" in logs
    assert_clean(logs, f"the {log_format} logs")


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_token_never_in_once_output(sim: Simulator, tmp_path: Path, log_format: str) -> None:
    config = write_config(tmp_path / "c.yaml", config_for(sim, PROCESS_FAULTS))
    result = run_exporter(
        f"--config.file={config}", "--once", "--log.level=debug", f"--log.format={log_format}"
    )
    assert result.returncode == 1  # some faults fail the poll
    assert "pinpointe_up" in result.stdout and "<redacted>" in result.stderr
    assert_clean(result.stdout, "--once stdout")
    assert_clean(result.stderr, "--once stderr")


def test_token_never_in_config_check(sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", config_for(sim, list(FAULTS)))
    result = run_exporter(f"--config.file={config}", "--config.check", "--log.level=debug")
    assert result.returncode == 0 and "(usertoken set)" in result.stdout
    assert_clean(result.stdout + result.stderr, "--config.check output")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    file_config = config_for(sim, ["auth"])
    del file_config["accounts"][0]["usertoken"]
    file_config["accounts"][0]["usertoken_file"] = str(token_file)
    file_config["accounts"][0]["page_size"] = "many"  # a config error names the key, not the token
    bad = write_config(tmp_path / "bad.yaml", file_config)
    failed = run_exporter(f"--config.file={bad}", "--config.check")
    assert failed.returncode == 2 and "accounts[0].page_size" in failed.stderr
    assert_clean(failed.stdout + failed.stderr, "a config error")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_token_never_in_exception_text(sim: Simulator, fault: str) -> None:
    account = account_settings(
        sim,
        TOKEN,
        name=fault,
        username=fault,
        page_size=5,
        groupings=("autoresponder", "send"),
    )
    client = PinpointeClient(account, max_pages=20)
    try:
        snapshot = AccountFetcher(account, client).fetch_snapshot()
    except PollError as error:
        text = "".join(traceback.format_exception(error))
        assert_clean(text + repr(error) + repr(error.args) + error.message, "exception text")
    else:
        assert_clean(repr(snapshot), "the snapshot")
    finally:
        client.close()
    assert_clean(repr(account) + str(account.usertoken), "the account's repr")
