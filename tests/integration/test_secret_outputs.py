"""No output of the exporter carries the usertoken, whatever Pinpointe echoes.

For several tokens (mixed case; full of regex metacharacters; one that is part of a word
the pages print), Pinpointe quotes the token back in every place a message is built from
its answer (reason phrases of a 5xx and a 404, a redirect's Location, a status line, the
body's status, pagination.next, an errormessage), in other letter cases too, and the
token also sits in two accounts' api_url (a query value, a userinfo password). Every
endpoint, both /-/reload answers, --config.check and the log are then searched for every
form the token can take.
"""

from __future__ import annotations

import gzip
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.config.secret import secret_forms
from exporter.simulator import SimAccount, Simulator
from exporter.simulator.faults.failed import ENCODINGS
from tests.conftest import ExporterProcess, run_exporter, spawn_exporter, wait_for, write_config

# token -> the words a page prints that contain it (searched for outside those words)
TOKENS = {
    "mixed_case": ("PpTok-MiXeD-Case-4d3c2b1a", ()),
    "regex_metacharacters": ("t0k+(a|b)*.[x]?^$\\d{3}", ()),
    "part_of_a_page_word": ("ccounts", ("accounts",)),
    # "/" and "~", which URL encoders treat differently; both kinds of quote (a repr)
    "url_and_quote_characters": ("aB3+dE/fG~9h'J\"==", ()),
    # "ß" upper-cases to "SS"; sent as raw UTF-8, "ö" reads as "Ã¶"
    "non_ascii": ("straßeTök~9/x", ()),
}
# account -> how its Pinpointe answers (the simulator's "echo" fault, or another fault)
ECHOES: dict[str, tuple[str, dict[str, Any]]] = {
    "reason-5xx": ("echo", {"where": "reason", "status": 503, "case": "upper"}),
    "reason-404": ("echo", {"where": "reason", "status": 404, "case": "lower"}),
    "location": ("echo", {"where": "location", "case": "swapped"}),
    "location-slash": ("echo", {"where": "location", "encoding": "url_slash"}),
    "location-php": ("echo", {"where": "location", "encoding": "php", "case": "upper"}),
    "location-twice": ("echo", {"where": "location", "encoding": "twice"}),
    "reason-utf8": ("echo", {"where": "reason", "encoding": "utf8_raw", "case": "upper"}),
    "location-utf8": ("echo", {"where": "location", "encoding": "utf8_raw"}),
    "status-line": ("echo", {"where": "status_line"}),
    "status-field": ("echo", {"where": "status", "case": "upper"}),
    "next": ("echo", {"where": "next"}),
    "errormessage": ("echo_token", {}),
}
URL_ACCOUNTS = ("url-query", "url-userinfo")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    accounts = [
        SimAccount(username=f"{name}-{kind}", token=token, autoresponders=3)
        for kind, (token, _) in TOKENS.items()
        for name in (*ECHOES, *URL_ACCOUNTS)
    ]
    simulator = Simulator(accounts).start("127.0.0.1", 0)
    for kind in TOKENS:
        for name, (fault, params) in ECHOES.items():
            simulator.set_fault(f"{name}-{kind}", fault, **params)
    yield simulator
    simulator.stop()


def config_for(sim: Simulator, kind: str) -> dict[str, Any]:
    token = TOKENS[kind][0]
    quoted = urllib.parse.quote(token, safe="")
    host = urllib.parse.urlsplit(sim.url)
    urls = {name: sim.url for name in ECHOES}
    urls["url-query"] = f"{sim.url}?usertoken={quoted}"
    urls["url-userinfo"] = f"http://demo:{quoted}@{host.netloc}{host.path}"
    return {
        "poll_interval": "1m",
        "timeout": "5s",
        "accounts": [
            {"name": name, "api_url": url, "username": f"{name}-{kind}", "usertoken": token}
            for name, url in urls.items()
        ],
    }


def echoed_forms(token: str) -> set[str]:
    """The token as the ECHOES send it, found here independently of secret_forms."""
    cased = {case(token) for case in (str, str.upper, str.lower, str.swapcase)}
    return {encode(text) for text in cased for encode in ENCODINGS.values()}


def assert_clean(text: str, kind: str, where: str) -> None:
    token, benign = TOKENS[kind]
    folded = text.lower()
    for word in benign:
        folded = folded.replace(word, " ")
    for form in {*secret_forms(token), *echoed_forms(token)}:
        assert form.lower() not in folded, f"the token ({form!r}) appears in {where}"


def polled(handle: ExporterProcess) -> dict[str, Any] | None:
    accounts = {a["name"]: a for a in handle.get("/api/v1/status").json()["accounts"]}
    failed = all(accounts[name]["last_failure"] for name in ECHOES)
    up = all(accounts[name]["health"] == "up" for name in URL_ACCOUNTS)
    return accounts if failed and up else None


def served(handle: ExporterProcess) -> dict[str, str]:
    texts = {path: handle.get(path).text for path in ("/", "/api/v1/status", "/config")}
    texts["/troubleshooting"] = handle.get("/troubleshooting").text
    texts["/metrics"] = handle.get("/metrics").text
    openmetrics = {"Accept": "application/openmetrics-text; version=1.0.0"}
    texts["/metrics (OpenMetrics)"] = handle.get("/metrics", headers=openmetrics).text
    raw = requests.get(
        handle.url + "/metrics", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10
    )
    texts["/metrics (gzip)"] = gzip.decompress(raw.raw.read()).decode()
    return texts


@pytest.mark.parametrize("kind", list(TOKENS))
def test_no_output_carries_the_token(sim: Simulator, tmp_path: Path, kind: str) -> None:
    token = TOKENS[kind][0]
    config = config_for(sim, kind)
    handle = spawn_exporter(tmp_path, config, "--web.enable-lifecycle", "--log.level=debug")
    try:
        accounts = wait_for(lambda: polled(handle), timeout=60, what="every account polled")
        for name in ECHOES:
            message = accounts[name]["last_failure"]["message"]
            assert "<redacted>" in message, f"{name}: Pinpointe's echo is gone: {message}"
        texts = served(handle)
        for name in URL_ACCOUNTS:
            assert accounts[name]["api_url"].count("<redacted>") == 1, accounts[name]["api_url"]
        assert texts["/config"].count("usertoken: <redacted>") == len(config["accounts"])

        reloaded = requests.post(handle.url + "/-/reload", timeout=70)
        assert reloaded.status_code == 200, reloaded.text
        texts["/-/reload (200)"] = reloaded.text
        # A broken reload whose problem quotes the token (as a bad request_type).
        broken = config_for(sim, kind)
        broken["accounts"][0]["request_type"] = token
        write_config(handle.config_path, broken)
        refused = requests.post(handle.url + "/-/reload", timeout=70)
        assert refused.status_code == 500, refused.text
        assert "[0].request_type: must be one of" in refused.text
        texts["/-/reload (500)"] = refused.text
        texts["/ after the failed reload"] = handle.get("/").text
        assert "The last configuration reload failed" in texts["/ after the failed reload"]
    finally:
        assert handle.stop() == 0
    texts["the log"] = handle.logs()
    checked = run_exporter(f"--config.file={handle.config_path}", "--config.check")
    assert checked.returncode == 2 and "request_type" in checked.stderr
    texts["--config.check of the broken file"] = checked.stdout + checked.stderr
    good = write_config(tmp_path / "good.yaml", config)
    checked = run_exporter(f"--config.file={good}", "--config.check")
    assert checked.returncode == 0, checked.stderr
    texts["--config.check"] = checked.stdout + checked.stderr
    for where, text in texts.items():
        assert_clean(text, kind, where)
