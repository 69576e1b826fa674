"""A usertoken_file can neither stall the process nor flood its memory.

At start, anything but a short regular UTF-8 file is refused with exit 2 naming the
file (a FIFO used to keep the process from ever listening; /dev/zero grew it without
bound). At run time, a token file swapped for such a thing fails that account's polls
with a message naming the file, while the other account, sharing the only poll slot,
keeps polling and the broken account's data goes stale on time; a missing or empty file
(a rotation in progress) keeps the last token. Memory is measured on the process.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.simulator import SimAccount, Simulator
from tests.conftest import (
    ExporterProcess,
    labels,
    process_usage,
    run_measured,
    series,
    spawn_exporter,
    wait_for,
    write_config,
)

TOKEN = "tok-file-5e4d3c2b1a"
PEAK_RSS_BOUND = 150 * 1024 * 1024


def fifo(directory: Path) -> Path:
    path = directory / "fifo"
    os.mkfifo(path)
    return path


def huge_file(directory: Path) -> Path:
    path = directory / "huge"
    with path.open("wb") as out:
        out.truncate(100 * 1024 * 1024)  # sparse: 100 MiB of zeros
    return path


def invalid_utf8(directory: Path) -> Path:
    path = directory / "latin1"
    path.write_bytes(b"tok-caf\xe9-latin1\n")
    return path


def a_directory(directory: Path) -> Path:
    path = directory / "dir"
    path.mkdir()
    return path


# what the token file becomes -> how to make it in a directory, and what is said of it
BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dev_zero": (lambda _: Path("/dev/zero"), "is a character device, not a regular file"),
    "fifo": (fifo, "is a FIFO (named pipe), not a regular file"),
    "huge": (huge_file, "is larger than 4KiB"),
    "invalid_utf8": (invalid_utf8, "is not valid UTF-8 (byte 0xe9 at line 1, offset 7)"),
    "directory": (a_directory, "is a directory, not a regular file"),
}


@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_a_bad_token_file_at_start_exits_2_naming_it(tmp_path: Path, bad: str) -> None:
    make, problem = BAD_FILES[bad]
    path = make(tmp_path)
    config = {
        "accounts": [
            {
                "name": "acme",
                "api_url": "http://127.0.0.1:9/apijson.php",
                "username": "demo",
                "usertoken_file": str(path),
            }
        ]
    }
    config_path = write_config(tmp_path / "config.yaml", config)
    for mode in ("--config.check", "--web.listen-address=127.0.0.1:0"):
        code, stderr, peak_rss = run_measured([f"--config.file={config_path}", mode])
        assert code == 2, stderr
        assert stderr.strip() == (
            f"error: {config_path}: accounts[0].usertoken_file: {path} {problem}"
        ), stderr
        assert peak_rss < PEAK_RSS_BOUND, peak_rss


@pytest.fixture
def two_accounts(tmp_path: Path) -> Iterator[tuple[Simulator, ExporterProcess, Path]]:
    """Account "rotating" reads its token from a file; "steady" has its token inline.
    One poll slot between them (max_concurrency: 1)."""
    sim = Simulator(
        [
            SimAccount(username="rotating", token=TOKEN, autoresponders=3),
            SimAccount(username="steady", token=TOKEN, autoresponders=3),
        ]
    ).start("127.0.0.1", 0)
    token_file = tmp_path / "secrets" / "token"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")
    config: dict[str, Any] = {
        "poll_interval": "1s",
        "stale_after": "3s",
        "max_concurrency": 1,
        "accounts": [
            {
                "name": "rotating",
                "api_url": sim.url,
                "username": "rotating",
                "usertoken_file": str(token_file),
            },
            {"name": "steady", "api_url": sim.url, "username": "steady", "usertoken": TOKEN},
        ],
    }
    handle = spawn_exporter(tmp_path, config)
    try:
        yield sim, handle, token_file
    finally:
        handle.stop()
        sim.stop()


def replace_with(token_file: Path, source: Path) -> None:
    """Swap the token file for ``source`` by a rename, as a secret mount does."""
    staged = token_file.with_name("staged")
    if source.parent == token_file.parent and source.is_file():
        source.rename(staged)
    else:
        staged.symlink_to(source)
    staged.replace(token_file)


def polled_since(sim: Simulator, wanted: int) -> bool:
    return sim.request_count("rotating") >= wanted


def accounts_with_data(handle: ExporterProcess) -> set[str]:
    recipients = series(handle.samples(), "pinpointe_autoresponder_recipients")
    return {dict(key)["account"] for key in recipients}


def up(handle: ExporterProcess, account: str) -> float | None:
    return series(handle.samples(), "pinpointe_up").get(labels(account=account))


@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_a_token_file_swapped_at_run_time_fails_only_its_account(
    two_accounts: tuple[Simulator, ExporterProcess, Path], bad: str
) -> None:
    sim, handle, token_file = two_accounts
    wait_for(lambda: up(handle, "rotating") == 1 and up(handle, "steady") == 1, what="both up")
    make, problem = BAD_FILES[bad]
    source = make(token_file.parent)
    rotating_requests = sim.request_count("rotating")
    replace_with(token_file, source)

    def refused() -> dict[str, Any] | None:
        status = handle.get("/api/v1/status").json()
        account = next(a for a in status["accounts"] if a["name"] == "rotating")
        failure = account["last_failure"]
        return failure if failure and problem in failure["message"] else None

    failure = wait_for(refused, what="the rotating account's poll to fail")
    assert failure["reason"] == "auth"
    assert failure["message"].startswith(f"usertoken_file {token_file} {problem}")
    # The steady account keeps its slot: it is polled again and again meanwhile.
    steady = sim.request_count("steady")
    wait_for(lambda: sim.request_count("steady") >= steady + 3, what="steady polled 3 more times")
    assert up(handle, "steady") == 1 and up(handle, "rotating") == 0
    # The rotating account asked Pinpointe for nothing once its token file went bad ...
    assert sim.request_count("rotating") <= rotating_requests + 1
    # ... and its data is withdrawn after stale_after, as for any failing account.
    wait_for(
        lambda: "rotating" not in accounts_with_data(handle),
        what="the rotating account's data withdrawn after stale_after",
    )
    usage = process_usage(handle.process.pid)
    assert usage.peak_rss < PEAK_RSS_BOUND, usage
    assert "internal error" not in handle.logs() and "this is a bug" not in handle.logs()
    # Fixed: the next poll uses the token again.
    good = token_file.parent / "good"
    good.write_text(TOKEN)
    replace_with(token_file, good)
    wait_for(lambda: up(handle, "rotating") == 1, what="the rotating account up again")


def test_a_missing_or_empty_token_file_keeps_the_last_token(
    two_accounts: tuple[Simulator, ExporterProcess, Path],
) -> None:
    sim, handle, token_file = two_accounts
    wait_for(lambda: up(handle, "rotating") == 1, what="rotating up")
    for step in ("empty", "missing"):
        if step == "empty":
            token_file.write_text("")
        else:
            token_file.unlink()
        wait_for(
            functools.partial(polled_since, sim, sim.request_count("rotating") + 2),
            what=f"two polls with the token file {step}",
        )
        assert up(handle, "rotating") == 1, step
    assert "usertoken_file" not in handle.logs()
