"""Shared fixtures: the simulator in-process, the exporter as a real process, scraping."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import yaml
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import AccountConfig, Secret
from exporter.simulator import SimAccount, Simulator

if TYPE_CHECKING:
    import trustme  # a test extra, not in .venv-min

ROOT = Path(__file__).resolve().parent.parent
# `make test` runs a module's tests on one xdist worker (--dist loadscope), module after
# module; these take longest, so they start first instead of ending the run alone.
SLOWEST_MODULES = (
    "test_container_compose.py",
    "test_container_image.py",
    "test_container_kube.py",
    "test_soak.py",
    "test_e2e_alerting.py",
    "test_rules.py",
    "test_token_hygiene.py",
    "test_server.py",
    "test_exporter.py",
    "test_politeness.py",
)


try:  # a test extra: .venv-min (make test-min) runs no property tests
    from hypothesis import HealthCheck, settings
except ImportError:
    pass
else:
    # Hypothesis's defaults fail an example that takes over 200 ms, or data that is slow
    # to generate: what a loaded machine does, not a bug.
    settings.register_profile(
        "loaded-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("loaded-machine")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def slowest_first(item: pytest.Item) -> int:
        name = item.path.name
        return SLOWEST_MODULES.index(name) if name in SLOWEST_MODULES else len(SLOWEST_MODULES)

    items.sort(key=slowest_first)


Labels = frozenset[tuple[str, str]]


# What the simulator and exporter fixtures are: start(...) -> a running one.
StartSimulator = Callable[..., Simulator]
StartExporter = Callable[..., "ExporterProcess"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_server_cert(cert: trustme.LeafCert, directory: Path, stem: str) -> None:
    """A server certificate chain and its key, as a web config names them: <stem>.crt and
    <stem>.key."""
    cert.cert_chain_pems[0].write_to_path(str(directory / f"{stem}.crt"))
    cert.private_key_pem.write_to_path(str(directory / f"{stem}.key"))


# How long to wait for an event before calling the test hung. Only a hang-stopper: a test
# never depends on anything happening sooner, so a loaded machine only makes it slower.
PATIENCE = 180.0


def wait_for(
    predicate: Callable[[], Any], timeout: float = PATIENCE, what: str = "condition"
) -> Any:
    """Poll until predicate() is truthy; fail the test with ``what`` if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (requests.RequestException, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def proc_stats(pid: int) -> tuple[int, int, int]:
    """(resident bytes, threads, open file descriptors) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) * 1024
    threads = int(fields["Threads"])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, threads, fds


def running_threads(pid: int) -> int:
    """Threads of ``pid`` on a CPU or waiting for one (state R); threads waiting for a
    lock, a timer or the network sleep (S) and are not counted."""
    running = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        running += state == "R"
    return running


def wait_for_connections_released(
    pid: int, threads_before: int, fds_before: int, timeout: float, what: str
) -> None:
    """Wait until a server's threads and descriptors are back near their count before its
    connections were opened (the demo's own poller connection may come and go)."""

    def released() -> bool:
        _, threads, fds = proc_stats(pid)
        return threads <= threads_before + 2 and fds <= fds_before + 3

    wait_for(released, timeout=timeout, what=what)


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send bytes, read until the server closes. A server that refuses early may close
    (or reset) before everything is sent: what it answered, if anything, is returned."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def metric_families(text: str) -> list[Metric]:
    """The families of an exposition in the text format."""
    return list(text_string_to_metric_families(text))


def openmetrics_families(text: str) -> list[Metric]:
    """The families of an exposition in the OpenMetrics format."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse

    return list(parse(text))  # type: ignore[no-untyped-call]


def parse_samples(text: str) -> dict[tuple[str, Labels], float]:
    """Exposition text -> {(sample name, labels): value}."""
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def labels(**kw: str) -> Labels:
    return frozenset(kw.items())


def series(samples: dict[tuple[str, Labels], float], name: str) -> dict[Labels, float]:
    return {lbl: value for (n, lbl), value in samples.items() if n == name}


@pytest.fixture
def simulator() -> Iterator[Callable[..., Simulator]]:
    """start(*accounts, **kw) -> a running Simulator on a free loopback port."""
    started: list[Simulator] = []

    def start(*accounts: SimAccount, **kw: Any) -> Simulator:
        sim = Simulator(list(accounts) or [SimAccount()], **kw).start("127.0.0.1", 0)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def account_config(
    sim: Simulator,
    name: str = "acme",
    username: str = "demo",
    token: str = "demo-token",
    **overrides: Any,
) -> dict[str, Any]:
    config = {
        "name": name,
        "api_url": sim.url,
        "username": username,
        "usertoken": token,
    }
    config.update(overrides)
    return config


def account_settings(
    sim: Simulator, token: str, name: str = "acme", username: str = "demo", **overrides: Any
) -> AccountConfig:
    """Typed settings of one account polling ``sim`` (for in-process client tests)."""
    account = AccountConfig(
        name=name,
        api_url=sim.url,
        username=username,
        usertoken=Secret(token),
        poll_interval=60,
        timeout=60,  # never meant to expire: a test of a timeout passes its own
        stale_after=600,
    )
    return replace(account, **overrides)


SYSTEM_DEPS = "apt-get install prometheus prometheus-alertmanager (or scripts/install-system-deps)"


def require_tool(name: str, install: str, skip_outside_ci: bool = False) -> str:
    """Path of an external tool a test runs: beside this Python (test extras) or on PATH.

    A missing tool fails the test, so CI never passes by skipping; ``skip_outside_ci``
    lets a developer without it skip instead.
    """
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        message = f"{name} is not installed: {install}"
        if skip_outside_ci and not os.environ.get("CI"):
            pytest.skip(message)
        pytest.fail(message)
    return found


def promtool(
    *args: str, stdin: str | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Debian's ``promtool`` with ``args`` (its output captured, its exit code not checked).
    The timeout only ends a hung run: promtool's unit tests take minutes on a loaded machine."""
    return subprocess.run(
        [require_tool("promtool", SYSTEM_DEPS), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` on an exposition."""
    return promtool("check", "metrics", stdin=text)


@dataclass
class ExporterProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    config_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str = "/metrics", **kw: Any) -> requests.Response:
        return requests.get(self.url + path, **{"timeout": 60, **kw})

    def samples(self) -> dict[tuple[str, Labels], float]:
        response = self.get()
        assert response.status_code == 200, response.text
        return parse_samples(response.text)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)  # some tests assert a clean exit (0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


@dataclass(frozen=True)
class Usage:
    peak_rss: int  # bytes, the process's high-water mark (VmHWM)
    rss: int
    threads: int
    fds: int


def process_usage(pid: int) -> Usage:
    """What a process holds now, and the most memory it ever held, from /proc."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )

    def kib(key: str) -> int:
        return int(status[key].split()[0]) * 1024

    return Usage(
        peak_rss=kib("VmHWM"),
        rss=kib("VmRSS"),
        threads=int(status["Threads"]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
    )


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_exporter(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the exporter CLI to completion (for --once, --config.check, --version)."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Callable[..., ExporterProcess]]:
    """start(config_dict or None, *extra_args) -> a serving exporter process (healthy)."""
    started: list[ExporterProcess] = []

    def start(
        config: dict[str, Any] | None,
        *args: str,
        wait_ready: bool = True,
        env: dict[str, str] | None = None,
    ) -> ExporterProcess:
        path = "/-/ready" if wait_ready else "/-/healthy"
        handle = spawn_exporter(
            tmp_path, config, *args, env=env, ready=lambda h: h.get(path).status_code == 200
        )
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


# The start line's address, in logfmt (address=127.0.0.1:PORT) or JSON ("address": "...").
_STARTED_ON = re.compile(r'pinpointe-exporter started.*?address"?[=:] ?"?127\.0\.0\.1:(\d+)')


def spawn_exporter(
    directory: Path,
    config: dict[str, Any] | None,
    *args: str,
    env: dict[str, str] | None = None,
    ready: Callable[[ExporterProcess], bool] | None = None,
    timeout: float = PATIENCE,
    preexec_fn: Callable[[], None] | None = None,
) -> ExporterProcess:
    """Start the exporter as a process outside the ``exporter`` fixture (for module-scoped
    setups and for TLS/basic auth, where readiness is probed differently); the caller stops it.

    ``ready(handle)`` defaults to GET /-/ready answering 200 over plain HTTP;
    ``preexec_fn`` runs in the child before the exporter starts (e.g. to set rlimits).
    """
    directory.mkdir(parents=True, exist_ok=True)
    index = len(list(directory.glob("spawned-*.log")))
    config_path = directory / f"spawned-{index}.yaml"
    if config is not None:
        write_config(config_path, config)
    log_path = directory / f"spawned-{index}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                f"--config.file={config_path}",
                # Port 0, read back from the start line: a port picked here and bound
                # later could be taken meanwhile by another xdist worker's process.
                "--web.listen-address=127.0.0.1:0",
                *args,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,
        )
    handle = ExporterProcess(process, 0, log_path, config_path)
    probe = ready or (lambda h: h.get("/-/ready").status_code == 200)

    def serving() -> bool:
        if process.poll() is not None:
            pytest.fail(f"exporter exited with {process.returncode}:\n{handle.logs()}")
        if not handle.port:
            started = _STARTED_ON.search(handle.logs())
            if started is None:
                return False
            handle.port = int(started.group(1))
        return probe(handle)

    try:
        wait_for(serving, timeout=timeout, what="the exporter to serve")
    except BaseException:
        handle.stop()
        raise
    return handle


def config_text(**account: str) -> str:
    """A configuration file's text with one account, its keys replaced by ``account``."""
    item = {"name": "acme", "api_url": "https://x.example/apijson.php", "username": "u", **account}
    return json.dumps({"accounts": [item]})


def closed_by_peer(sock: socket.socket) -> bool:
    """True when the other end shut the connection down (end-of-file after any data
    still unread); False if it stays open for the socket's timeout."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


# -- TLS and basic auth for web config tests (trustme and bcrypt are test extras) ------
BCRYPT_COST = 4  # the lowest bcrypt cost keeps the tests fast; production hashes use 10+


def bcrypt_hash(password: str, cost: int = BCRYPT_COST) -> str:
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


@dataclass
class Pki:
    """A server certificate from a CA, and client certificates from another."""

    directory: Path
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_ca_file: Path
    client_pem: Path  # key and certificate of a client the client CA signed
    stranger_pem: Path  # a client certificate from a CA the exporter does not trust
    other_san_pem: Path  # signed by the client CA, but for another name


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    import trustme

    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    write_server_cert(server, directory, "server")
    client_ca = trustme.CA()
    client_ca.cert_pem.write_to_path(str(directory / "clients-ca.pem"))
    for name, path in (
        ("prometheus.example.com", "client.pem"),
        ("intruder.example.com", "other-san.pem"),
    ):
        client_ca.issue_cert(name).private_key_and_cert_chain_pem.write_to_path(
            str(directory / path)
        )
    trustme.CA().issue_cert("prometheus.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(directory / "stranger.pem")
    )
    return Pki(
        directory,
        ca,
        directory / "ca.pem",
        directory / "server.crt",
        directory / "server.key",
        directory / "clients-ca.pem",
        directory / "client.pem",
        directory / "stranger.pem",
        directory / "other-san.pem",
    )


def tls_config(pki: Pki, **extra: Any) -> dict[str, Any]:
    """A web config serving TLS with the PKI's server certificate, plus ``extra``."""
    return {
        "tls_server_config": {
            "cert_file": str(pki.cert_file),
            "key_file": str(pki.key_file),
            **extra,
        }
    }


# Forks the exporter from a small process and writes its peak RSS (kB) to stdout: the
# test process itself is large, and a child forked from it starts with its memory
# counted in ru_maxrss until it execs.
MEASURE = """
import os, subprocess, sys
command = [sys.executable, "-m", "exporter", *sys.argv[1:]]
child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(args: list[str]) -> tuple[int, str, int]:
    """Run the exporter to its end (a hang fails the test after a minute rather than
    blocking it); (exit code, stderr, peak RSS in bytes)."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stderr, int(result.stdout.split()[-1]) * 1024
