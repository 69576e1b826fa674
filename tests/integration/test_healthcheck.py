"""pinpointe-exporter --healthcheck against real exporter processes: plain, TLS, mTLS, basic auth.

Each server is the exporter in --demo mode with a web config (certificates from trustme);
the probe is the CLI as Docker's HEALTHCHECK and Compose run it. Exit 0 is healthy, 1
unhealthy, and never 2, which Docker reserves.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import trustme
import yaml

from tests.conftest import (
    ROOT,
    ExporterProcess,
    free_port,
    spawn_exporter,
    wait_for,
    write_server_cert,
)

PASSWORD = "healthcheck horse battery staple"


@dataclass
class Pki:
    directory: Path
    client_pem: Path  # key and certificate from the CA the exporter trusts for clients
    stranger_pem: Path  # key and certificate from a CA it does not trust


def _web_config(directory: Path, name: str, config: dict[str, object]) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("healthcheck-pki")
    # A CA-signed server certificate, not a self-signed one: the probe must trust the
    # configured leaf on its own.
    server = trustme.CA().issue_cert("pinpointe-exporter.monitoring.svc")
    write_server_cert(server, directory, "server")
    impostor = trustme.CA().issue_cert("pinpointe-exporter.monitoring.svc")
    write_server_cert(impostor, directory, "impostor")
    clients = trustme.CA()
    clients.cert_pem.write_to_path(str(directory / "clients-ca.pem"))
    clients.issue_cert("healthcheck").private_key_and_cert_chain_pem.write_to_path(
        str(directory / "client.pem")
    )
    trustme.CA().issue_cert("healthcheck").private_key_and_cert_chain_pem.write_to_path(
        str(directory / "stranger.pem")
    )
    return Pki(directory, directory / "client.pem", directory / "stranger.pem")


def _listening(handle: ExporterProcess) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", handle.port)) == 0


@dataclass
class Server:
    handle: ExporterProcess
    web_config: Path | None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.handle.port}"


def _serve(directory: Path, web: dict[str, object] | None) -> Server:
    # A port of its own on the command line, which the probe reads when it follows it.
    args = ["--demo", f"--web.listen-address=127.0.0.1:{free_port()}"]
    path = None
    if web is not None:
        path = _web_config(directory, f"web-{len(list(directory.glob('web-*')))}.yml", web)
        args.append(f"--web.config.file={path}")
    return Server(spawn_exporter(directory, None, *args, ready=_listening), path)


@pytest.fixture(scope="module")
def servers(pki: Pki) -> Iterator[dict[str, Server]]:
    tls = {"cert_file": "server.crt", "key_file": "server.key"}
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    configs: dict[str, dict[str, object] | None] = {
        "plain": None,
        "tls": {"tls_server_config": tls},
        "mtls": {
            "tls_server_config": {
                **tls,
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": "clients-ca.pem",
            }
        },
        "basic": {"basic_auth_users": {"prometheus": hashed}},
    }
    started: dict[str, Server] = {}
    try:
        for name, web in configs.items():
            started[name] = _serve(pki.directory, web)
        yield started
    finally:
        for server in started.values():
            server.handle.stop()


def healthcheck(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "--healthcheck", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def _flags(server: Server) -> list[str]:
    flags = [f"--web.listen-address={server.address}"]
    if server.web_config is not None:
        flags.append(f"--web.config.file={server.web_config}")
    return flags


def test_plain(servers: dict[str, Server]) -> None:
    server = servers["plain"]
    proc = healthcheck(*_flags(server))
    assert (proc.returncode, proc.stdout.strip()) == (
        0,
        f"healthy: http://{server.address}/-/healthy: 200",
    )
    # ":PORT" (all addresses, the default's form) is probed on the loopback address.
    proc = healthcheck(f"--web.listen-address=:{server.handle.port}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"http://127.0.0.1:{server.handle.port}/-/healthy: 200" in proc.stdout


def test_nothing_listening_is_unhealthy() -> None:
    proc = healthcheck(f"--web.listen-address=127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert proc.stdout.startswith("unhealthy: ") and "no answer" in proc.stdout


def test_tls(servers: dict[str, Server], pki: Pki) -> None:
    server = servers["tls"]
    proc = healthcheck(*_flags(server))
    assert (proc.returncode, proc.stdout.strip()) == (
        0,
        f"healthy: https://{server.address}/-/healthy: 200",
    )
    # The same certificate given inline (cert/key instead of cert_file/key_file).
    inline = _web_config(
        pki.directory,
        "inline.yml",
        {
            "tls_server_config": {
                "cert": (pki.directory / "server.crt").read_text(),
                "key": (pki.directory / "server.key").read_text(),
            }
        },
    )
    proc = healthcheck(f"--web.listen-address={server.address}", f"--web.config.file={inline}")
    assert proc.returncode == 0, proc.stdout
    # Without the web config the probe speaks plain HTTP to a TLS server.
    proc = healthcheck(f"--web.listen-address={server.address}")
    assert proc.returncode == 1, proc.stdout
    # A server presenting another certificate than the configured one is not trusted.
    impostor = _web_config(
        pki.directory,
        "impostor.yml",
        {"tls_server_config": {"cert_file": "impostor.crt", "key_file": "impostor.key"}},
    )
    proc = healthcheck(f"--web.listen-address={server.address}", f"--web.config.file={impostor}")
    assert proc.returncode == 1
    assert "TLS failed" in proc.stdout and "CERTIFICATE_VERIFY_FAILED" in proc.stdout


def test_mutual_tls(servers: dict[str, Server], pki: Pki) -> None:
    server = servers["mtls"]
    proc = healthcheck(*_flags(server), f"--healthcheck.cert-file={pki.client_pem}")
    assert (proc.returncode, proc.stdout.strip()) == (
        0,
        f"healthy: https://{server.address}/-/healthy: 200",
    )
    # No client certificate: said before connecting, naming the flags.
    proc = healthcheck(*_flags(server))
    assert proc.returncode == 1
    assert "requires a client certificate" in proc.stdout
    assert "--healthcheck.cert-file" in proc.stdout
    # A certificate the server's client CA did not sign: refused in the handshake.
    proc = healthcheck(*_flags(server), f"--healthcheck.cert-file={pki.stranger_pem}")
    assert proc.returncode == 1
    assert proc.stdout.startswith("unhealthy: ")


def test_basic_auth(servers: dict[str, Server], tmp_path: Path) -> None:
    server = servers["basic"]
    url = f"http://{server.address}/-/healthy"
    # No password: the exporter's own 401 (its realm) proves it answers.
    proc = healthcheck(*_flags(server))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith(f"healthy: {url}: 401 from pinpointe-exporter's basic auth")
    # The password from a file (as a Docker or Kubernetes secret): /-/healthy itself.
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    with_password = [*_flags(server), f"--healthcheck.basic-auth-password-file={password_file}"]
    proc = healthcheck(*with_password)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"healthy: {url}: 200")
    proc = healthcheck(*with_password, "--healthcheck.basic-auth-username=prometheus")
    assert proc.returncode == 0, proc.stdout
    # A wrong password is a broken setup, not a live server.
    password_file.write_text("not the password\n")
    proc = healthcheck(*with_password)
    assert proc.returncode == 1
    assert "the basic auth password was refused" in proc.stdout
    assert PASSWORD not in proc.stdout + proc.stderr


def test_problems_exit_1_never_2(tmp_path: Path) -> None:
    # Docker reserves exit status 2; every problem is "unhealthy" with a reason.
    missing = tmp_path / "missing-web.yml"
    proc = healthcheck(f"--web.config.file={missing}")
    assert proc.returncode == 1
    assert str(missing) in proc.stdout
    proc = healthcheck("--web.listen-address=nonsense")
    assert proc.returncode == 1
    assert "invalid listen address" in proc.stdout


def test_without_web_flags_it_follows_the_exporter_of_the_container(
    servers: dict[str, Server], pki: Pki, tmp_path: Path
) -> None:
    """The image's HEALTHCHECK has no flags: it follows those of the exporter running as
    PID 1 (--healthcheck.pid here), or as its child (`docker run --init`)."""
    for name, scheme in (("tls", "https"), ("basic", "http")):
        server = servers[name]
        proc = healthcheck(f"--healthcheck.pid={server.handle.process.pid}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.startswith(f"healthy: {scheme}://{server.address}/-/healthy: "), (
            proc.stdout
        )
        assert proc.stderr == f"following the web flags of pid {server.handle.process.pid}\n"
    # Another program that merely names pinpointe-exporter in its arguments is not followed.
    address = servers["tls"].address
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(3600)",  # killed below
            "/opt/pinpointe-exporter",
            f"--web.listen-address={address}",
        ]
    )
    try:
        proc = healthcheck(f"--healthcheck.pid={other.pid}")
        assert "http://127.0.0.1:9863/-/healthy" in proc.stdout and proc.stderr == ""
    finally:
        other.kill()
        other.wait()
    # Flags given to the probe win: nothing is followed.
    tls = servers["tls"]
    proc = healthcheck(
        f"--healthcheck.pid={tls.handle.process.pid}", f"--web.listen-address={tls.address}"
    )
    assert proc.returncode == 1 and f"http://{tls.address}/-/healthy" in proc.stdout
    proc = healthcheck("--healthcheck.pid=0")
    assert "http://127.0.0.1:9863/-/healthy" in proc.stdout
    # Under an init process, with the web config named relative to the exporter's own
    # working directory, while the probe runs elsewhere.
    port = free_port()
    web = os.path.relpath(servers["tls"].web_config or "", ROOT)
    parent = subprocess.Popen(
        [
            "/bin/sh",
            "-c",
            f"{sys.executable} -m exporter --demo --web.listen-address=127.0.0.1:{port} "
            f"--web.config.file={web}; exit 0",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = [sys.executable, "-m", "exporter", "--healthcheck"]

        def follows() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*probe, f"--healthcheck.pid={parent.pid}"],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )

        proc = wait_for(lambda: (p := follows()).returncode == 0 and p, what="the probe")
        assert proc.stdout.strip() == f"healthy: https://127.0.0.1:{port}/-/healthy: 200"
    finally:
        for child in (int(c) for c in _children_of(parent.pid)):
            os.kill(child, signal.SIGTERM)
        parent.wait(timeout=60)


def _children_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
