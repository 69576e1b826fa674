"""The status page of a running exporter in a real browser, and /troubleshooting as HTML."""

from __future__ import annotations

import html
import math
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import requests

from exporter.simulator import SimAccount
from tests.conftest import (
    ExporterProcess,
    StartExporter,
    StartSimulator,
    account_config,
    require_tool,
    wait_for,
)

NASTY = "<script>alert('x')</script> & \"quoted\""


CHROMIUM_INSTALL = "apt-get install chromium (or scripts/install-system-deps)"


def chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            require_tool("chromium", CHROMIUM_INSTALL),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_status_page_in_a_real_browser(
    simulator: StartSimulator, exporter: StartExporter, tmp_path: Path
) -> None:
    sim = simulator(
        SimAccount(
            username="good",
            token="tok-good-81c2a9",
            autoresponders=3,
            extra_fields={"odd<i>&field": 7},
        ),
        SimAccount(username="bad", token="tok-bad-5e0d7c", autoresponders=3),
        SimAccount(username="slow", token="tok-slow-2b9f4a", autoresponders=3),
    )
    sim.set_fault("bad", "failed_200", message=f"Statistics unavailable {NASTY}")
    sim.set_fault("slow", "hang", seconds=math.inf)  # "never polled" for the whole test
    good = account_config(sim, name="healthy", username="good", token="tok-good-81c2a9")
    good["autoresponders"] = [{"name": NASTY}, {"id": 2}]
    accounts = [
        good,
        account_config(sim, name="failing", username="bad", token="tok-bad-5e0d7c"),
        account_config(sim, name="pending", username="slow", token="tok-slow-2b9f4a"),
    ]
    config = {"poll_interval": "1h", "timeout": "1h", "stale_after": "2h", "accounts": accounts}
    handle = exporter(config, wait_ready=False)

    def settled() -> dict[str, str] | None:
        status = handle.get("/api/v1/status").json()
        health = {a["name"]: a["health"] for a in status["accounts"]}
        return (
            health
            if health["healthy"] != "never_polled" and health["failing"] != "never_polled"
            else None
        )

    assert wait_for(settled, what="two accounts polled") == {
        "healthy": "up",
        "failing": "down",
        "pending": "never_polled",
    }
    status = handle.get("/api/v1/status").json()
    failing = status["accounts"][1]
    assert failing["last_failure"]["reason"] == "api_failed"
    assert NASTY in failing["last_failure"]["message"]
    assert status["accounts"][0]["unmapped_fields"] == ["htmlopens", "odd<i>&field"]
    assert status["accounts"][0]["records"] == {"autoresponder": 1}  # the name is not there
    assert status["demo"] is False and status["config"]["last_reload_successful"] is True

    page = handle.get("/")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<script" not in page.text

    dom = chromium("--dump-dom", handle.url + "/", tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr
    assert "<script" not in dom.stdout  # the names arrived as text, not as elements
    escaped = html.escape(NASTY, quote=False)
    assert f"Statistics unavailable {escaped}" in dom.stdout
    for text in (
        "UP",
        "DOWN",
        "NEVER POLLED",
        "healthy",
        "failing",
        "pending",
        "Accounts up: 1 of 3",
    ):
        assert text in dom.stdout, text
    assert "Demo mode" not in dom.stdout
    shot = tmp_path / "status.png"
    result = chromium(
        f"--screenshot={shot}", "--window-size=1400,700", handle.url + "/", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    config_text = handle.get("/config").text
    assert "usertoken: <redacted>" in config_text and "tok-" not in config_text
    assert "tok-" not in handle.logs()
    assert requests.post(handle.url + "/", timeout=10).status_code == 405


def test_the_troubleshooting_guide_is_served_as_html(
    exporter: Callable[..., ExporterProcess],
) -> None:
    response = exporter(None, "--demo").get("/troubleshooting")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    assert "<h1>Troubleshooting</h1>" in page and page.count("<li>") >= 10
    assert "<code>pinpointe_up 0</code>" in page or "<b><code>pinpointe_up 0</code>" in page
    prose = re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)
    for markup in ("**", "`", "](", "\n## ", "\n- "):
        assert markup not in prose, markup
