"""--shard INDEX/COUNT: every account is polled by exactly one shard, and stays there.

Proved three ways: through exporter.collector.sharding.shard_of, through the account list the
real exporter prints with `--config.check --shard i/n`, and through real polls
(`--once --shard i/n` against the simulator). The sharded Kubernetes overlay's
own container arguments, expanded per pod as Kubernetes does, are run the same way.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.collector import shard_of
from exporter.simulator import SimAccount, Simulator
from tests.conftest import ROOT, require_tool

COUNTS = range(1, 6)


ACCOUNTS = [f"account-{i:02d}" for i in range(50)]


NEW_ACCOUNTS = ["zeta", "acme", "globex.eu", "initech_2", *[f"new-{i:02d}" for i in range(46)]]


_ACCOUNT_LINE = re.compile(r"^account (\S+): POST ", re.MULTILINE)


def expand(env: dict[str, str], ref: re.Match[str]) -> str:
    """A Kubernetes ``$(VAR)`` in a container's args, from its env."""
    return env[ref[1]]


def write_config(path: Path, names: Sequence[str], api_url: str = "http://127.0.0.1:9/x") -> Path:
    config = {
        "poll_interval": "5m",
        "timeout": "1m",  # never meant to expire: --once must poll every account
        "accounts": [
            {"name": name, "api_url": api_url, "username": name, "usertoken": "${SHARD_TOKEN}"}
            for name in names
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_exporter(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SHARD_TOKEN": "shard-test-token-0123", **(env or {})},
    )


def config_check(config: Path, shard: str, env: dict[str, str] | None = None) -> list[str]:
    """The accounts the exporter says it would poll as that shard."""
    proc = run_exporter("--config.check", f"--config.file={config}", f"--shard={shard}", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"shard {shard}:" in proc.stdout
    assert "shard-test-token-0123" not in proc.stdout + proc.stderr
    return _ACCOUNT_LINE.findall(proc.stdout)


def cli_assignment(config: Path, env: dict[str, str] | None = None) -> dict[int, dict[str, int]]:
    """{count: {account: shard}} from --config.check, for every COUNT; fails on duplicates."""
    jobs = [(count, index) for count in COUNTS for index in range(count)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(lambda job: config_check(config, f"{job[1]}/{job[0]}", env), jobs))
    result: dict[int, dict[str, int]] = {count: {} for count in COUNTS}
    for (count, index), names in zip(jobs, outputs, strict=True):
        for name in names:
            assert name not in result[count], f"{name} is in two shards of {count}"
            result[count][name] = index
    return result


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("sharding")
    mixed = [*NEW_ACCOUNTS[:10], *ACCOUNTS[:25], *NEW_ACCOUNTS[10:30], *ACCOUNTS[25:]]
    mixed += NEW_ACCOUNTS[30:]
    return {
        "fifty": write_config(tmp / "fifty.yaml", ACCOUNTS),
        "grown": write_config(tmp / "grown.yaml", mixed),
    }


@pytest.fixture(scope="module")
def fifty(configs: dict[str, Path]) -> dict[int, dict[str, int]]:
    return cli_assignment(configs["fifty"])


@pytest.mark.parametrize("count", COUNTS)
def test_every_account_in_exactly_one_shard_cli(
    fifty: dict[int, dict[str, int]], count: int
) -> None:
    # cli_assignment already failed on an account listed by two shards.
    assert sorted(fifty[count]) == sorted(ACCOUNTS)
    assert fifty[count] == {name: shard_of(name, count) for name in ACCOUNTS}
    assert set(fifty[count].values()) == set(range(count))


def test_assignment_survives_unrelated_accounts(
    configs: dict[str, Path], fifty: dict[int, dict[str, int]]
) -> None:
    grown = cli_assignment(configs["grown"])
    for count in COUNTS:
        assert len(grown[count]) == len(ACCOUNTS) + len(NEW_ACCOUNTS)
        moved = {n for n in ACCOUNTS if grown[count][n] != fifty[count][n]}
        assert moved == set(), f"COUNT={count}: adding accounts moved {sorted(moved)}"
        assert all(shard_of(n, count) == fifty[count][n] for n in ACCOUNTS)


def test_assignment_does_not_depend_on_python_hash_seed(configs: dict[str, Path]) -> None:
    outputs = {
        seed: config_check(configs["fifty"], "1/3", env={"PYTHONHASHSEED": seed})
        for seed in ("0", "1", "12345")
    }
    assert len({tuple(names) for names in outputs.values()}) == 1
    assert outputs["0"]


@pytest.mark.parametrize("shard", ["3/3", "0/0", "-1/2", "1", "a/b"])
def test_invalid_shard_is_a_usage_error(configs: dict[str, Path], shard: str) -> None:
    proc = run_exporter("--config.check", f"--config.file={configs['fifty']}", f"--shard={shard}")
    assert proc.returncode == 2
    assert "--shard" in proc.stderr


@pytest.fixture(scope="module")
def twelve_accounts() -> Iterator[Simulator]:
    sim = Simulator(
        [
            SimAccount(username=name, token="shard-test-token-0123", autoresponders=3)
            for name in ACCOUNTS[:12]
        ]
    ).start("127.0.0.1", 0)
    try:
        yield sim
    finally:
        sim.stop()


_UP = re.compile(r'^pinpointe_up\{account="([^"]+)"\} (\S+)$', re.MULTILINE)


def test_real_polls_split_across_shards(twelve_accounts: Simulator, tmp_path: Path) -> None:
    names = ACCOUNTS[:12]
    config = write_config(tmp_path / "sim.yaml", names, api_url=twelve_accounts.url)
    count = 3
    polled: list[str] = []
    for index in range(count):
        proc = run_exporter("--once", f"--config.file={config}", f"--shard={index}/{count}")
        assert proc.returncode == 0, proc.stderr
        up = dict(_UP.findall(proc.stdout))
        assert set(up.values()) == {"1"}
        assert sorted(up) == sorted(n for n in names if shard_of(n, count) == index)
        polled.extend(up)
    assert sorted(polled) == sorted(names)
    # Each account was polled by one process: the same number of requests for all.
    requests = {name: twelve_accounts.request_count(name) for name in names}
    assert len(set(requests.values())) == 1 and min(requests.values()) > 0, requests


_SHARD_GAUGE = re.compile(r"^pinpointe_exporter_shard_(index|count) (\S+)$", re.MULTILINE)


def test_exporter_reports_the_shard_it_serves(twelve_accounts: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "sim.yaml", ACCOUNTS[:12], api_url=twelve_accounts.url)
    for shard, expected in (
        ("2/5", {"index": 2.0, "count": 5.0}),
        ("0/1", {"index": 0.0, "count": 1.0}),
    ):
        proc = run_exporter("--once", f"--config.file={config}", f"--shard={shard}")
        assert proc.returncode == 0, proc.stderr
        gauges = _SHARD_GAUGE.findall(proc.stdout)
        assert {name: float(value) for name, value in gauges} == expected
        assert len(gauges) == 2, "one series each"
        assert "# TYPE pinpointe_exporter_shard_index gauge" in proc.stdout
    # Without --shard: neither series (an unsharded exporter is not shard 0 of 1).
    proc = run_exporter("--once", f"--config.file={config}")
    assert proc.returncode == 0, proc.stderr
    assert "pinpointe_exporter_shard_" not in proc.stdout


def _statefulset() -> dict[str, Any]:
    kubectl = require_tool("kubectl", "install kubectl 1.32", skip_outside_ci=True)
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "kubernetes" / "overlays" / "sharded")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    (sts,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "StatefulSet"]
    result: dict[str, Any] = sts
    return result


def test_statefulset_pods_cover_every_account_once(configs: dict[str, Path]) -> None:
    sts = _statefulset()
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    replicas = sts["spec"]["replicas"]
    plain_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    seen: Counter[str] = Counter()
    for ordinal in range(replicas):
        # What Kubernetes runs in pod <ordinal>: $(POD_INDEX) and the other
        # $(VAR)s expanded, and the ConfigMap's file replaced by the 50-account
        # test config.
        env = {**plain_env, "POD_INDEX": str(ordinal)}
        args = [
            re.sub(r"\$\((\w+)\)", functools.partial(expand, env), arg)
            for arg in container["args"]
            if not arg.startswith("--config.file=")
        ]
        proc = run_exporter("--config.check", f"--config.file={configs['fifty']}", *args)
        assert proc.returncode == 0, proc.stderr
        seen.update(_ACCOUNT_LINE.findall(proc.stdout))
    assert sorted(seen) == sorted(ACCOUNTS)
    assert set(seen.values()) == {1}
