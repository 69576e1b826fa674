"""Small things a new user hits: make demo on a busy port, --web.hash-password, the
simulator alone, --help."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml

from exporter.flags import build_parser
from exporter.web import parse_web_config
from tests.conftest import ROOT, run_exporter


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_make_demo_takes_a_listen_address_and_hints_when_it_is_taken(busy_port: int) -> None:
    result = subprocess.run(
        [
            "make",
            "-s",
            "-o",
            ".venv/.runtime",  # the installed package is the one under test
            "demo",
            f"LISTEN=127.0.0.1:{busy_port}",
            f"BIN={Path(sys.executable).parent}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr  # make's "a recipe failed"
    assert (
        f"cannot listen on 127.0.0.1:{busy_port}: Address already in use; another process uses "
        "it: choose another address with --web.listen-address"
    ) in result.stderr
    assert (
        f"make demo: the exporter stopped (exit 1). If 127.0.0.1:{busy_port} is taken, pick "
        "another address: make demo LISTEN=127.0.0.1:9999\n"
    ) in result.stderr


def test_hash_password_reads_stdin_and_prints_a_bcrypt_hash() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--web.hash-password"],
        input="correct horse\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert hashed.startswith("$2b$10$") and len(result.stdout.splitlines()) == 1
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    assert "correct horse" not in result.stdout + result.stderr
    web = parse_web_config(yaml.safe_dump({"basic_auth_users": {"ops": hashed}}), "w.yml")
    assert web.verify("ops", b"correct horse")
    empty = run_exporter("--web.hash-password")
    assert (empty.returncode, empty.stderr) == (
        2,
        "error: --web.hash-password: no password on stdin\n",
    )


def simulator(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "exporter.simulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_the_simulator_on_a_busy_port_says_so_in_one_line(busy_port: int) -> None:
    process = simulator("--port", str(busy_port))
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr == (
        f"error: cannot listen on 127.0.0.1:{busy_port}: Address already in use; "
        "choose another port with --port\n"
    )
    assert stdout == ""


def test_the_simulator_says_what_it_accepts() -> None:
    process = simulator("--port", "0", "--username", "alice", "--token", "alice-token")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert line.startswith("Pinpointe simulator on http://127.0.0.1:")
    assert line.endswith("/apijson.php, accepting username 'alice' with usertoken 'alice-token'\n")


def test_help_describes_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter.simulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    options = result.stdout.split("options:", 1)[1]
    for flag in (
        "--host",
        "--port",
        "--autoresponders",
        "--sends-per-autoresponder",
        "--seed",
        "--username",
        "--token",
    ):
        described = options.split(flag, 1)[1].split("\n  -", 1)[0]
        assert "(default:" in described, flag
    undocumented = [a.option_strings for a in build_parser()._actions if not a.help]
    assert undocumented == []
