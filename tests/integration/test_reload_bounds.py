"""A reload can neither hang, leak nor kill the process, whatever the file holds.

Every file that cannot be read or parsed (any bytes, any YAML) is a configuration
error: exit 2 naming the file and key at start; at reload a 500 with that message, the
success gauge at 0, the reason on the status page, and an auto-reload watcher that keeps
working. Reload triggers are folded together, and a reload whose loading does not
return is cut at its bound: measured on the process (threads, answers), and on the
Reloader with a loader that never returns.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.simulator import SimAccount, Simulator
from tests.conftest import (
    PATIENCE,
    ExporterProcess,
    StartSimulator,
    labels,
    process_usage,
    run_exporter,
    run_measured,
    spawn_exporter,
    wait_for,
    write_config,
)

TOKEN = "tok-reload-3f2e1d0c"


RELOAD_OK = "pinpointe_exporter_config_last_reload_successful"


def good_config(sim: Simulator) -> str:
    return (
        "poll_interval: 1m\n"
        "accounts:\n"
        f"  - {{name: acme, api_url: '{sim.url}', username: demo, usertoken: {TOKEN}}}\n"
    )


BROKEN: dict[str, tuple[bytes, str]] = {
    "unhashable_key": (
        b"accounts:\n  - name: a\n    field_map: {[x, y]: opens}\n",
        "invalid YAML at line 3, column 17: a key must be a single value, not a list or mapping",
    ),
    "latin1": (
        b"# caf\xe9\naccounts: []\n",
        "the configuration file is not valid UTF-8 (byte 0xe9 at line 1, offset 5)",
    ),
    "deep_nesting": (b"accounts: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nesting depth"),
    "huge_integer": (
        b"max_concurrency: " + b"7" * 5000 + b"\naccounts: []\n",
        "invalid YAML at line 1, column 18: a 5000-digit number is too long to be a setting",
    ),
    "not_a_mapping": (b"- just\n- a list\n", "must be a mapping, got a list"),
}


def broken_file(path: Path, name: str) -> str:
    content, problem = BROKEN[name]
    path.write_bytes(content)
    return problem


@pytest.mark.parametrize("name", list(BROKEN))
def test_an_unreadable_file_is_a_config_error_at_start(tmp_path: Path, name: str) -> None:
    path = tmp_path / "config.yaml"
    problem = broken_file(path, name)
    for mode in ("--config.check", "--web.listen-address=127.0.0.1:0"):
        result = run_exporter(f"--config.file={path}", mode)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: {path}: "), result.stderr
        assert problem in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def exporter_with_lifecycle(
    tmp_path: Path, sim: Simulator, *flags: str
) -> tuple[Path, ExporterProcess]:
    """An exporter polling the simulator from config.yaml, with /-/reload enabled."""
    path = tmp_path / "config.yaml"
    path.write_text(good_config(sim))
    return path, spawn_exporter(
        tmp_path, None, f"--config.file={path}", "--web.enable-lifecycle", *flags
    )


def reload_state(handle: ExporterProcess) -> float:
    return handle.samples()[(RELOAD_OK, labels())]


def test_every_unreadable_file_fails_the_reload_and_the_watcher_survives(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = simulator(SimAccount(username="demo", token=TOKEN, autoresponders=2))
    path, handle = exporter_with_lifecycle(tmp_path, sim, "--config.auto-reload-interval=1s")
    try:
        for name in BROKEN:
            problem = broken_file(path, name)
            answer = requests.post(handle.url + "/-/reload", timeout=70)
            assert answer.status_code == 500, (name, answer.text)
            assert answer.text.startswith(f"{path}: ") and problem in answer.text, answer.text
            assert reload_state(handle) == 0
            banner = handle.get("/").text
            assert "The last configuration reload failed" in banner
            assert problem.split(" (")[0] in banner, banner
            assert handle.get("/api/v1/status").json()["config"]["last_reload_error"]
            # The watcher is alive: a good file is picked up with no signal.
            path.write_text(good_config(sim).replace("1m", "2m"))
            wait_for(lambda: reload_state(handle) == 1, what=f"the watcher after {name}")
            assert "poll_interval: 2m" in handle.get("/config").text
            path.write_text(good_config(sim))
            wait_for(lambda: "poll_interval: 1m" in handle.get("/config").text, what="1m again")
        assert "Traceback" not in handle.logs()
    finally:
        assert handle.stop() == 0


def abandon_reload(port: int) -> None:
    """POST /-/reload and go away without reading the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")


def test_reload_storms_stay_bounded(simulator: StartSimulator, tmp_path: Path) -> None:
    """A token file that used to block every reload (a FIFO), 200 SIGHUPs and 50 abandoned
    /-/reload requests on 16 connection slots: /metrics keeps answering throughout, the
    threads stay few, and the process lives."""
    sim = simulator(SimAccount(username="demo", token=TOKEN, autoresponders=2))
    path, handle = exporter_with_lifecycle(tmp_path, sim, "--web.max-connections=16")
    try:
        baseline = process_usage(handle.process.pid).threads
        os.mkfifo(tmp_path / "token.fifo")
        path.write_text(
            good_config(sim).replace(f"usertoken: {TOKEN}", "usertoken_file: token.fifo")
        )
        peak_threads = 0
        for index in range(200):
            handle.process.send_signal(signal.SIGHUP)
            if index % 20 == 0:
                assert handle.get("/metrics").status_code == 200
                peak_threads = max(peak_threads, process_usage(handle.process.pid).threads)
        wait_for(lambda: reload_state(handle) == 0, what="the failed reload")
        for index in range(50):
            abandon_reload(handle.port)
            if index % 5 == 0:
                assert handle.get("/-/healthy").status_code == 200
                peak_threads = max(peak_threads, process_usage(handle.process.pid).threads)
        assert handle.get("/metrics").status_code == 200
        assert "token.fifo is a FIFO (named pipe), not a regular file" in handle.get("/").text
        assert peak_threads < 60, (baseline, peak_threads)
        wait_for(
            lambda: process_usage(handle.process.pid).threads <= baseline + 2,
            what="the threads back to their number before the storm",
        )
        assert handle.process.poll() is None
    finally:
        assert handle.stop() == 0


def test_config_check_names_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    document: dict[str, Any] = {
        "poll_interval": "soon",
        "max_concurrency": 0,
        "accounts": [
            {"name": "a\n", "api_url": "http://x/apijson.php", "username": "u", "usertoken": "t"},
            {
                "name": "b",
                "api_url": "ftp://x",
                "username": "replace-with-your-username",
                "usertoken": "tok-valid-123456",
                "autoresponders": [{"id": 1}, {"id": 1}],
                "page_sise": 10,
            },
        ],
    }
    write_config(path, document)
    result = run_exporter(f"--config.file={path}", "--config.check")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: poll_interval: invalid duration 'soon': use a Prometheus duration "
        "like 30s, 5m or 1h",
        f"error: {path}: max_concurrency: must be at least 1, got 0",
        f"error: {path}: accounts[0].name: 'a\\n' may contain only letters, digits, _ . and -",
        f"error: {path}: accounts[1].page_sise: unknown key (did you mean page_size?)",
        f"error: {path}: accounts[1].api_url: must be an http:// or https:// URL",
        f"error: {path}: accounts[1].username: looks like a placeholder (xxxx…, <...>, "
        "your-username, replace-with-…), not a user name: set the Pinpointe user name you "
        "log in with",
        f"error: {path}: accounts[1].autoresponders[1]: id=1 is listed twice",
    ]


def alias_bomb(levels: int) -> str:
    """A few hundred bytes of YAML whose aliases expand to 9**levels strings, used as a
    field_map target (refused, quoting its value)."""
    lines = ['  l1: &l1 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(2, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"  l{level}: &l{level} [{refs}]")
    return (
        "anchors:\n" + "\n".join(lines) + "\naccounts:\n  - name: acme\n"
        f"    api_url: http://x.example/apijson.php\n    username: u\n    usertoken: {TOKEN}\n"
        f"    field_map: {{lol: *l{levels}}}\n"
    )


def test_aliased_and_huge_values_are_quoted_short(tmp_path: Path) -> None:
    """A YAML alias bomb, and one 512 KiB string used as the name of 60 accounts: every
    problem is reported, each in one short line, without expanding the values."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(9))
    huge = tmp_path / "huge.yaml"
    name = '"' + "n " * (256 << 10) + '"'  # 512 KiB, and not a valid account name
    accounts = "".join(
        f"  - {{name: {'&n ' + name if i == 0 else '*n'}, api_url: 'http://x.example/a'}}\n"
        for i in range(60)
    )
    huge.write_text(f"accounts:\n{accounts}")
    for path, problem in (
        (bomb, "accounts[0].field_map.lol: must be one of recipients"),
        (huge, "accounts[0].name: 'n n n"),
    ):
        code, stderr, peak_rss = run_measured([f"--config.file={path}", "--config.check"])
        assert code == 2
        assert problem in stderr, stderr[:2000]
        assert max(len(line) for line in stderr.splitlines()) <= 1100
        assert len(stderr) < 100_000
        assert peak_rss < 300 * 1024 * 1024, peak_rss


def test_sigterm_in_a_storm_of_sighups_is_never_lost(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = simulator(SimAccount(username="demo", token=TOKEN, autoresponders=2))
    path = tmp_path / "config.yaml"
    path.write_text(good_config(sim))
    handle = spawn_exporter(tmp_path, None, f"--config.file={path}")
    for _ in range(3000):
        handle.process.send_signal(signal.SIGHUP)
    handle.process.send_signal(signal.SIGTERM)
    assert handle.process.wait(PATIENCE) == 0
    assert 'msg="shutting down" signal=SIGTERM' in handle.logs()
