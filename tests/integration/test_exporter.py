"""The exporter as users run it: a real process, polling the simulator over HTTP."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import requests

from exporter import __version__
from exporter.simulator import SimAccount, Simulator
from tests.conftest import (
    ExporterProcess,
    StartExporter,
    StartSimulator,
    account_config,
    labels,
    parse_samples,
    promtool_check,
    run_exporter,
    series,
    wait_for,
    write_config,
)

TOKEN = "tok-9c1e5d2b7a"
GOLDEN = Path(__file__).parent / "golden" / "once.prom"
FROZEN = 1_780_000_000.0
ENGAGEMENT = (
    "recipients",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "forwards",
    "unsubscribes",
    "bounces",
    "complaints",
)


def fast_config(sim: Simulator, **account: Any) -> dict[str, Any]:
    return {
        "poll_interval": "1s",
        "timeout": "1m",  # never meant to expire here
        "stale_after": "1m",
        "accounts": [account_config(sim, token=TOKEN, **account)],
    }


def polls(handle: ExporterProcess, reason: str | None = None) -> float:
    samples = handle.samples()
    if reason is None:
        return samples.get(("pinpointe_last_success_timestamp_seconds", labels(account="acme")), 0)
    return samples[("pinpointe_poll_errors_total", labels(account="acme", reason=reason))]


def engagement(samples: dict[Any, float]) -> dict[Any, float]:
    return {k: v for k, v in samples.items() if k[0].startswith("pinpointe_autoresponder")}


def test_once_prints_every_metric_for_every_autoresponder(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=6, sends_per_autoresponder=2))
    config = write_config(
        tmp_path / "c.yaml", fast_config(sim, groupings=["autoresponder", "send"])
    )
    result = run_exporter(f"--config.file={config}", "--once")
    assert result.returncode == 0, result.stderr
    check = promtool_check(result.stdout)
    assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check
    samples = parse_samples(result.stdout)
    for ar in range(1, 7):
        for metric in ENGAGEMENT:
            for prefix in ("pinpointe_autoresponder_", "pinpointe_autoresponder_send_"):
                found = [
                    lbl
                    for (name, lbl) in samples
                    if name == prefix + metric and ("autoresponder_id", str(ar)) in lbl
                ]
                expected = 3 if metric == "bounces" else 1
                if prefix.endswith("send_"):
                    expected *= 2
                assert len(found) == expected, (prefix + metric, ar)
    assert samples[("pinpointe_up", labels(account="acme"))] == 1
    assert samples[("pinpointe_records", labels(account="acme", grouping="send"))] == 12
    assert samples[("pinpointe_api_requests_total", labels(account="acme", code="200"))] == 2
    assert TOKEN not in result.stdout + result.stderr
    assert re.search(r'msg="poll succeeded" account=acme records=18 pages=2 ', result.stderr)


def test_once_exits_1_when_a_poll_fails(simulator: StartSimulator, tmp_path: Path) -> None:
    sim = simulator(SimAccount(token="another-token"))
    config = write_config(tmp_path / "c.yaml", fast_config(sim))
    result = run_exporter(f"--config.file={config}", "--once")
    assert result.returncode == 1
    samples = parse_samples(result.stdout)
    assert samples[("pinpointe_up", labels(account="acme"))] == 0
    assert samples[("pinpointe_poll_errors_total", labels(account="acme", reason="auth"))] == 1
    assert TOKEN not in result.stdout + result.stderr


def _golden_view(text: str) -> str:
    volatile = (
        "process_",
        "python_",
        "pinpointe_poll_duration_seconds",
        "pinpointe_last_success_timestamp_seconds",
        "pinpointe_exporter_config_last_reload_success_timestamp_seconds",
    )
    kept = [
        line
        for line in text.splitlines()
        if not any(
            line.startswith(v) or line.startswith(f"# HELP {v}") or line.startswith(f"# TYPE {v}")
            for v in volatile
        )
    ]
    return "\n".join(kept) + "\n"


def test_golden_exposition(simulator: StartSimulator, tmp_path: Path) -> None:
    account = SimAccount(
        token=TOKEN,
        autoresponders=3,
        sends_per_autoresponder=2,
        seed=42,
        extra_fields={"mobileopens": 1},
    )
    sim = simulator(account, clock=lambda: FROZEN)
    config = fast_config(sim, groupings=["autoresponder", "send"])
    config["accounts"][0]["api_url"] = "http://127.0.0.1:{port}/apijson.php"
    path = tmp_path / "c.yaml"
    text = json.dumps(config).replace("{port}", str(sim.port))
    path.write_text(text)
    result = run_exporter(f"--config.file={path}", "--once")
    assert result.returncode == 0, result.stderr
    view = _golden_view(result.stdout)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(view)
    assert view == GOLDEN.read_text()


def test_config_check_lists_what_would_be_polled_without_the_token(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = simulator()
    config = write_config(tmp_path / "c.yaml", fast_config(sim, autoresponders=[{"id": 4}]))
    result = run_exporter(f"--config.file={config}", "--config.check")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"{config}: configuration is valid",
        "poll_interval=1s timeout=1m stale_after=1m max_concurrency=4",
        f"account acme: POST {sim.url} as demo (usertoken set), requesttype Stats, "
        "groupings autoresponder, page_size 100, every 1s, id=4, system CAs",
    ]
    assert TOKEN not in result.stdout + result.stderr


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"accounts:\n  - name: a\n    username: u\n    usertoken: {TOKEN}\n")
    result = run_exporter(f"--config.file={config}")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {config}: accounts[0].api_url: required"
    assert TOKEN not in result.stderr


def test_bad_flags_exit_2() -> None:
    assert run_exporter("--web.listen-address=nonsense", "--demo").returncode == 2
    assert run_exporter("--shard=3/3", "--demo").returncode == 2
    assert run_exporter("--log.level=loud").returncode == 2


def test_version() -> None:
    result = run_exporter("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"pinpointe-exporter {__version__}")


def test_endpoints_and_negotiation(simulator: StartSimulator, exporter: StartExporter) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=4))
    handle = exporter(fast_config(sim))
    plain = handle.get()
    assert plain.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    om = handle.get(headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.text.endswith("# EOF\n")
    assert "# TYPE pinpointe_poll_errors counter" in om.text
    assert "# TYPE pinpointe_poll_errors_total counter" in plain.text
    raw = requests.get(
        handle.url + "/metrics", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(raw.raw.read())
    assert parse_samples(body.decode()).keys() == parse_samples(plain.text).keys()
    landing = handle.get("/")
    assert landing.status_code == 200 and 'href="/metrics"' in landing.text
    assert handle.get("/-/healthy").status_code == 200
    assert handle.get("/-/ready").status_code == 200
    assert handle.get("/nope").status_code == 404
    assert requests.post(handle.url + "/metrics", timeout=5).status_code == 405


def test_readiness_waits_for_the_first_poll_attempt(
    simulator: StartSimulator, exporter: StartExporter
) -> None:
    sim = simulator(SimAccount(token=TOKEN))
    sim.set_fault("demo", "hang", seconds=math.inf)  # the first poll lasts until released
    handle = exporter(fast_config(sim), wait_ready=False)
    wait_for(lambda: sim.request_count("demo") == 1, what="the first poll's request")
    not_ready = handle.get("/-/ready")
    assert not_ready.status_code == 503
    assert not_ready.text == "Not ready: waiting for the first poll of acme\n"
    sim.set_fault("demo", "http_500")  # released: no answer, then a 500 when retried
    wait_for(lambda: handle.get("/-/ready").status_code == 200, what="readiness")
    samples = handle.samples()
    assert samples[("pinpointe_up", labels(account="acme"))] == 0
    assert samples[("pinpointe_poll_errors_total", labels(account="acme", reason="http"))] >= 1


def test_bad_credentials(simulator: StartSimulator, exporter: StartExporter) -> None:
    sim = simulator(SimAccount(token="the-right-token"))
    handle = exporter(fast_config(sim))
    samples = handle.samples()
    assert samples[("pinpointe_up", labels(account="acme"))] == 0
    assert samples[("pinpointe_poll_errors_total", labels(account="acme", reason="auth"))] >= 1
    assert samples[("pinpointe_api_requests_total", labels(account="acme", code="401"))] >= 1
    assert not engagement(samples)
    logs = handle.logs()
    assert (
        "Pinpointe rejected the credentials for account acme (Unable to verify user "
        "credentials): check username and usertoken" in logs
    )
    assert "reason=auth" in logs
    assert TOKEN not in logs
    assert TOKEN not in handle.get().text


def test_failed_middle_page_keeps_the_previous_snapshot(
    simulator: StartSimulator, exporter: StartExporter
) -> None:
    now = [FROZEN]
    sim = simulator(SimAccount(token=TOKEN, autoresponders=25), clock=lambda: now[0])
    handle = exporter(fast_config(sim, page_size=10))
    before = engagement(handle.samples())
    assert len(series(handle.samples(), "pinpointe_autoresponder_recipients")) == 25
    sim.set_fault("demo", "fail_later_pages")
    now[0] += 86_400  # every figure grows: a partial publish would show
    wait_for(lambda: polls(handle, "http") >= 2, what="two failed polls")
    samples = handle.samples()
    assert engagement(samples) == before
    assert samples[("pinpointe_up", labels(account="acme"))] == 0
    assert "Pinpointe answered HTTP 500" in handle.logs()
    sim.set_fault("demo", None)
    wait_for(
        lambda: handle.samples()[("pinpointe_up", labels(account="acme"))] == 1, what="recovery"
    )
    after = engagement(handle.samples())
    assert after.keys() == before.keys()
    assert all(after[k] >= before[k] for k in before)
    assert sum(after.values()) > sum(before.values())


def test_stale_after_drops_engagement_series_but_keeps_up(
    simulator: StartSimulator, exporter: StartExporter
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=3))
    config = fast_config(sim)
    config["stale_after"] = "3s"
    handle = exporter(config)
    assert len(engagement(handle.samples())) == 3 * 11
    sim.set_fault("demo", "auth")
    wait_for(lambda: not engagement(handle.samples()), what="stale series to disappear")
    samples = handle.samples()
    assert samples[("pinpointe_up", labels(account="acme"))] == 0
    assert samples[("pinpointe_records", labels(account="acme", grouping="autoresponder"))] == 0
    assert ("pinpointe_last_success_timestamp_seconds", labels(account="acme")) in samples
    # The line is logged just after the series are withdrawn: wait for it too.
    wait_for(lambda: "engagement series withdrawn" in handle.logs(), what="the log line")


def test_vanished_autoresponder_vanishes(
    simulator: StartSimulator, exporter: StartExporter
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=5))
    handle = exporter(fast_config(sim))
    assert len(series(handle.samples(), "pinpointe_autoresponder_opens")) == 5
    sim.accounts["demo"].autoresponders = 3
    wait_for(
        lambda: len(series(handle.samples(), "pinpointe_autoresponder_opens")) == 3,
        what="the vanished autoresponders to disappear",
    )
    ids = {
        dict(lbl)["autoresponder_id"]
        for lbl in series(handle.samples(), "pinpointe_autoresponder_opens")
    }
    assert ids == {"1", "2", "3"}


def test_json_logs_and_clean_shutdown(simulator: StartSimulator, exporter: StartExporter) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=2))
    handle = exporter(fast_config(sim), "--log.format=json")
    wait_for(lambda: "poll succeeded" in handle.logs(), what="a poll log line")
    assert handle.stop() == 0
    lines = [json.loads(line) for line in handle.logs().splitlines() if line.strip()]
    poll = next(line for line in lines if line["msg"] == "poll succeeded")
    assert poll["account"] == "acme" and poll["records"] == 2 and poll["pages"] == 1
    assert poll["level"] == "info"
    assert lines[-1]["msg"] == "shutting down"


def test_demo_serves_simulated_data(exporter: StartExporter) -> None:
    handle = exporter(None, "--demo")
    samples = handle.samples()
    assert len(series(samples, "pinpointe_autoresponder_recipients")) == 25
    assert samples[("pinpointe_up", labels(account="demo"))] == 1
    assert "demo mode: serving SIMULATED Pinpointe data" in handle.logs()
    assert promtool_check(handle.get().text).returncode == 0
    start = time.monotonic()
    assert handle.stop() == 0
    assert time.monotonic() - start < 30  # bounded by stop(); not a timing assertion
