"""Reloading the configuration without a restart: real processes, signals and HTTP."""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import yaml

from exporter.collector import Fleet
from exporter.config import AccountConfig, Settings, parse_config
from exporter.config.keys import allowed_keys
from exporter.exposition import Store
from exporter.simulator import SimAccount, Simulator
from exporter.web import ExporterServer, Reply, Route, parse_web_config
from tests.conftest import (
    ExporterProcess,
    StartExporter,
    StartSimulator,
    account_config,
    account_settings,
    labels,
    series,
    wait_for,
    write_config,
)

TOKENS = {user: f"tok-{user}-5f1c9e7d" for user in ("keep", "drop", "change", "new")}


RELOAD_OK = "pinpointe_exporter_config_last_reload_successful"


RELOAD_TIME = "pinpointe_exporter_config_last_reload_success_timestamp_seconds"


def config(sim: Simulator, *accounts: dict[str, Any], **top: Any) -> dict[str, Any]:
    # timeout 1h: a request the simulator holds lasts until the test releases it
    return {
        "poll_interval": "1h",
        "stale_after": "2h",
        "timeout": "1h",
        **top,
        "accounts": list(accounts),
    }


def account(sim: Simulator, user: str, **overrides: Any) -> dict[str, Any]:
    return account_config(sim, name=user, username=user, token=TOKENS[user], **overrides)


def accounts_served(handle: ExporterProcess) -> set[str]:
    return {dict(lbl)["account"] for (name, lbl) in handle.samples() if "account" in dict(lbl)}


def engagement_of(handle: ExporterProcess, name: str) -> dict[Any, float]:
    return {
        key: value
        for key, value in handle.samples().items()
        if key[0].startswith("pinpointe_autoresponder") and ("account", name) in key[1]
    }


def test_reload_keeps_unchanged_accounts_and_applies_the_rest(
    simulator: StartSimulator, exporter: StartExporter, tmp_path: Path
) -> None:
    sim = simulator(*(SimAccount(username=u, token=t, autoresponders=4) for u, t in TOKENS.items()))
    first = config(sim, account(sim, "keep"), account(sim, "drop"), account(sim, "change"))
    handle = exporter(first, "--web.enable-lifecycle")
    assert {u: sim.request_count(u) for u in TOKENS} == {
        "keep": 1,
        "drop": 1,
        "change": 1,
        "new": 0,
    }
    before = handle.samples()
    assert before[(RELOAD_OK, labels())] == 1
    started_at = before[(RELOAD_TIME, labels())]
    keep_before = engagement_of(handle, "keep")
    change_before = engagement_of(handle, "change")
    assert len(keep_before) == len(change_before) == 4 * 11

    # The changed account's first new poll hangs: until it completes, its previous data stays.
    sim.set_fault("change", "hang", seconds=math.inf)
    second = config(
        sim,
        account(sim, "keep"),
        account(sim, "change", groupings=["autoresponder", "send"]),
        account(sim, "new"),
    )
    write_config(handle.config_path, second)
    response = requests.post(handle.url + "/-/reload", timeout=10)
    assert response.status_code == 200, response.text
    assert response.text == (
        "configuration reloaded: added new; removed drop; changed change; unchanged keep\n"
    )
    assert "drop" not in accounts_served(handle)  # at once, no poll needed
    wait_for(lambda: sim.request_count("change") == 2, what="the changed account's new poll")
    assert engagement_of(handle, "change") == change_before
    assert handle.samples()[("pinpointe_up", labels(account="change"))] == 1
    sim.set_fault("change", None)
    wait_for(
        lambda: ("pinpointe_up", labels(account="new")) in handle.samples(),
        what="the added account's first poll",
    )
    wait_for(
        lambda: (
            series(handle.samples(), "pinpointe_records").get(
                labels(account="change", grouping="send")
            )
            == 12
        ),
        what="the changed account's poll with its new groupings",
    )
    after = handle.samples()
    assert after[(RELOAD_OK, labels())] == 1
    assert after[(RELOAD_TIME, labels())] >= started_at
    assert engagement_of(handle, "keep") == keep_before
    assert accounts_served(handle) == {"keep", "change", "new"}
    # keep: never polled again; change: the hung poll, then autoresponder + send pages.
    assert {u: sim.request_count(u) for u in TOKENS} == {
        "keep": 1,
        "drop": 1,
        "change": 4,
        "new": 1,
    }
    counters = series(after, "pinpointe_api_requests_total")
    assert counters[labels(account="keep", code="200")] == 1
    assert counters[labels(account="change", code="200")] == 3  # carried over the restart

    # A broken configuration changes nothing: SIGHUP, then POST /-/reload.
    broken = config(sim, {"name": "x", "username": "u", "usertoken": TOKENS["keep"]})
    write_config(handle.config_path, broken)
    handle.process.send_signal(signal.SIGHUP)
    wait_for(lambda: handle.samples()[(RELOAD_OK, labels())] == 0, what="the failed reload metric")
    problem = f"{handle.config_path}: accounts[0].api_url: required"
    assert (
        f"configuration reload failed, the running configuration stays: {problem}" in handle.logs()
    )
    response = requests.put(handle.url + "/-/reload", timeout=10)
    assert (response.status_code, response.text) == (500, problem + "\n")
    failed = handle.samples()
    assert failed[(RELOAD_TIME, labels())] == after[(RELOAD_TIME, labels())]
    assert accounts_served(handle) == {"keep", "change", "new"}
    assert engagement_of(handle, "keep") == keep_before
    assert sum(sim.request_count(u) for u in TOKENS) == 7

    # A good configuration again: the metric recovers and nothing is polled for it.
    write_config(handle.config_path, second)
    handle.process.send_signal(signal.SIGHUP)
    wait_for(lambda: handle.samples()[(RELOAD_OK, labels())] == 1, what="a good reload")
    assert sum(sim.request_count(u) for u in TOKENS) == 7
    everything = handle.logs() + str(handle.samples())
    for token in TOKENS.values():
        assert token not in everything


def test_top_level_settings_apply_on_reload(
    simulator: StartSimulator, exporter: StartExporter
) -> None:
    sim = simulator(SimAccount(username="keep", token=TOKENS["keep"], autoresponders=2))
    handle = exporter(config(sim, account(sim, "keep")), "--web.enable-lifecycle")
    interval = ("pinpointe_poll_interval_seconds", labels(account="keep"))
    assert handle.samples()[interval] == 3600
    write_config(handle.config_path, config(sim, account(sim, "keep"), poll_interval="30m"))
    assert requests.post(handle.url + "/-/reload", timeout=10).status_code == 200
    assert handle.samples()[interval] == 1800
    wait_for(lambda: sim.request_count("keep") == 2, what="the restarted account's poll")


def test_reload_is_refused_without_the_lifecycle_flag_and_a_swapped_token_file_is_used(
    simulator: StartSimulator, exporter: StartExporter, tmp_path: Path
) -> None:
    """A Kubernetes secret volume: token -> ..data/token, ..data -> a timestamped dir that
    is replaced by swapping the ..data symlink; no signal, no reload."""
    old, new = "tok-old-7a3c91e5d2", "tok-new-0b6d28f4e1"
    sim = simulator(SimAccount(username="keep", token=old, autoresponders=2))
    volume = tmp_path / "secret"
    for version, token in (("..v1", old), ("..v2", new)):
        (volume / version).mkdir(parents=True)
        (volume / version / "token").write_text(token + "\n")
    (volume / "..data").symlink_to("..v1")
    (volume / "token").symlink_to("..data/token")
    item = account_config(sim, name="keep", username="keep", usertoken_file=str(volume / "token"))
    del item["usertoken"]
    handle = exporter(config(sim, item, poll_interval="1s", stale_after="1m"))

    refused = requests.post(handle.url + "/-/reload", timeout=10)
    assert refused.status_code == 403
    assert "--web.enable-lifecycle" in refused.text
    assert requests.get(handle.url + "/-/reload", timeout=10).status_code == 405

    up = ("pinpointe_up", labels(account="keep"))
    sim.accounts["keep"].token = new  # rotated at Pinpointe: the old token fails
    auth = ("pinpointe_poll_errors_total", labels(account="keep", reason="auth"))
    wait_for(lambda: handle.samples()[auth] >= 1, what="a poll with the old token to fail")
    (volume / "..tmp").symlink_to("..v2")
    os.replace(volume / "..tmp", volume / "..data")
    wait_for(lambda: handle.samples()[up] == 1, what="a poll with the swapped-in token")
    logs = handle.logs()
    assert "usertoken_file changed: the next request uses the new token" in logs
    everything = logs + handle.get().text
    assert old not in everything and new not in everything


def test_auto_reload_picks_up_a_configmap_symlink_swap(
    simulator: StartSimulator, exporter: StartExporter, tmp_path: Path
) -> None:
    sim = simulator(
        *(SimAccount(username=u, token=TOKENS[u], autoresponders=2) for u in ("keep", "new"))
    )
    mount = tmp_path / "config"
    for version, accounts in (
        ("..v1", [account(sim, "keep")]),
        ("..v2", [account(sim, "keep"), account(sim, "new")]),
    ):
        (mount / version).mkdir(parents=True)
        write_config(mount / version / "config.yaml", config(sim, *accounts))
    (mount / "..data").symlink_to("..v1")
    (mount / "config.yaml").symlink_to("..data/config.yaml")
    handle = exporter(
        None, f"--config.file={mount / 'config.yaml'}", "--config.auto-reload-interval=1s"
    )
    (mount / "..tmp").symlink_to("..v2")
    os.replace(mount / "..tmp", mount / "..data")
    wait_for(lambda: "new" in accounts_served(handle), what="the swapped-in configuration")
    assert 'trigger="file changed"' in handle.logs()
    wait_for(lambda: sim.request_count("new") == 1, what="the added account's first poll")
    assert sim.request_count("keep") == 1


@pytest.fixture
def guarded_reload(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    web = parse_web_config(yaml.safe_dump({"basic_auth_users": {"ops": hashed}}), "web.yml")
    calls: list[str] = []

    def handle(method: str) -> Reply:
        calls.append(method)
        return Reply(200, b"reloaded\n")

    server = ExporterServer(
        ("127.0.0.1", 0), Store(()), web=web, routes={"/-/reload": Route(("POST", "PUT"), handle)}
    )
    server.start_background()
    yield f"http://127.0.0.1:{server.server_address[1]}/-/reload", calls
    server.shutdown()
    server.server_close()


def test_basic_auth_applies_to_reload(guarded_reload: tuple[str, list[str]]) -> None:
    url, calls = guarded_reload
    assert requests.post(url, timeout=10).status_code == 401
    assert requests.post(url, auth=("ops", "wrong"), timeout=10).status_code == 401
    assert calls == []
    ok = requests.post(url, auth=("ops", "s3cret"), timeout=10)
    assert (ok.status_code, ok.text) == (200, "reloaded\n")
    assert requests.put(url, auth=("ops", "s3cret"), timeout=10).status_code == 200
    refused = requests.get(url, auth=("ops", "s3cret"), timeout=10)
    assert (refused.status_code, refused.headers["Allow"]) == (405, "POST, PUT")
    assert calls == ["POST", "PUT"]


class _RecordingStore(Store):
    """A Store that keeps every health update of every account."""

    def __init__(self) -> None:
        super().__init__(())
        self.health: list[tuple[str, bytes]] = []

    def update(
        self, account: str, health: Any, engagement: Any = None, attempted: bool = True
    ) -> None:
        self.health.append((account, b"".join(chunk.data for chunk in health.values())))
        super().update(account, health, engagement, attempted)


def test_a_restarted_account_never_publishes_reset_counters(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(username="change", token=TOKENS["change"], autoresponders=2))
    store = _RecordingStore()
    fleet = Fleet(store, 1)
    first = account_settings(sim, TOKENS["change"], name="change", username="change")
    try:
        fleet.apply((first,), 1)
        wait_for(lambda: sim.request_count("change") == 1, what="the first poll")
        wait_for(lambda: b'code="200"} 1' in store.health[-1][1], what="its health")
        seen = len(store.health)
        fleet.apply((replace(first, groupings=("autoresponder", "send")),), 1)
        wait_for(lambda: sim.request_count("change") == 3, what="the restarted account's poll")
        wait_for(lambda: b'code="200"} 3' in store.health[-1][1], what="its new health")
    finally:
        fleet.shutdown()
    after = [health for _, health in store.health[seen:]]
    counts = [
        int(health.split(b'pinpointe_api_requests_total{account="change",code="200"} ')[1][:1])
        for health in after
    ]
    assert counts == sorted(counts) and counts[0] == 1, counts  # never back to 0


ACCOUNT_CHANGES: dict[str, Any] = {
    "api_url": "http://127.0.0.1:9/apijson.php",
    "username": "someone-else",
    "usertoken": "tok-rotated-2b8e41",
    "request_type": "Autoresponders",
    "groupings": ["autoresponder", "send"],
    "page_size": 7,
    "autoresponders": [{"id": 3}],
    "max_sends_per_autoresponder": 5,
    "field_map": {"SpamCount": "complaints"},
    "poll_interval": "2h",
    "ca_file": "/etc/ssl/certs/ca-certificates.crt",
    "tls_insecure_skip_verify": True,
    "max_exposition_size": "32MiB",
}


TOP_LEVEL_CHANGES: dict[str, Any] = {
    "timeout": "7s",
    "stale_after": "3h",
    "poll_timeout": "9m",
    "max_record_size": "4KiB",
    "max_page_size": "1MiB",
    "max_label_length": 64,
}


def test_every_account_key_changed_by_a_reload_restarts_the_account(
    simulator: StartSimulator,
) -> None:
    """Fleet.apply tells a changed account by comparing settings: no key may be left out
    of that comparison (an unnoticed token or URL change would keep the old one)."""
    assert set(ACCOUNT_CHANGES) | {"name", "usertoken_file"} == set(allowed_keys(AccountConfig))
    inherited = set(allowed_keys(Settings)) - {"poll_interval", "max_concurrency", "accounts"}
    inherited -= {"max_exposition_size"}  # also an account key, changed above
    assert set(TOP_LEVEL_CHANGES) == inherited
    sim = simulator(SimAccount(username="change", token=TOKENS["change"], autoresponders=1))
    base: dict[str, Any] = {
        "poll_interval": "1h",
        "stale_after": "4h",
        "accounts": [account(sim, "change")],
    }

    def accounts(document: dict[str, Any]) -> tuple[AccountConfig, ...]:
        return parse_config(yaml.safe_dump(document), "config.yaml", {}).accounts

    fleet = Fleet(Store(()), 1)
    try:
        assert fleet.apply(accounts(base), 1).added == ("change",)
        assert fleet.apply(accounts(base), 1).unchanged == ("change",)
        variants = [
            {**base, "accounts": [{**base["accounts"][0], key: value}]}
            for key, value in ACCOUNT_CHANGES.items()
        ] + [{**base, key: value} for key, value in TOP_LEVEL_CHANGES.items()]
        for variant in variants:
            assert fleet.apply(accounts(variant), 1).changed == ("change",), variant
            assert fleet.apply(accounts(base), 1).changed == ("change",), variant
    finally:
        fleet.shutdown()
