"""--web.config.file: TLS, mutual TLS and basic auth with real HTTPS clients.

Certificates come from trustme; the exporter runs as a process in --demo mode (its own
simulator), so nothing but the web config differs from a default start.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
import yaml

from tests.conftest import (
    ExporterProcess,
    Pki,
    bcrypt_hash,
    parse_samples,
    run_exporter,
    running_threads,
    spawn_exporter,
    tls_config,
    wait_for,
)

PASSWORD = "correct horse battery staple"


StartSecured = Callable[..., ExporterProcess]


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[StartSecured]:
    """start(web_config, probe_kwargs) -> a --demo exporter serving with that web config."""
    started: list[ExporterProcess] = []

    def start(
        web: dict[str, Any],
        scheme: str = "https",
        probe_path: str = "/-/ready",
        args: tuple[str, ...] = (),
        **probe: Any,
    ) -> ExporterProcess:
        path = tmp_path / f"web-{len(started)}.yml"
        path.write_text(yaml.safe_dump(web))

        def ready(handle: ExporterProcess) -> bool:
            url = f"{scheme}://127.0.0.1:{handle.port}{probe_path}"
            return requests.get(url, timeout=5, **probe).status_code == 200

        handle = spawn_exporter(
            tmp_path, None, "--demo", f"--web.config.file={path}", *args, ready=ready
        )
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


def https(handle: ExporterProcess, path: str = "/metrics") -> str:
    return f"https://127.0.0.1:{handle.port}{path}"


def test_tls_serves_metrics_over_verified_https(pki: Pki, secured: StartSecured) -> None:
    handle = secured(tls_config(pki), verify=str(pki.ca_file))
    response = requests.get(https(handle), verify=str(pki.ca_file), timeout=10)
    assert response.status_code == 200
    samples = parse_samples(response.text)
    assert samples[("pinpointe_exporter_build_info", frozenset({("version", _version())}))] == 1
    for path in ("/", "/-/healthy", "/-/ready"):
        assert requests.get(https(handle, path), verify=str(pki.ca_file), timeout=10).ok
    # A client that does not trust the certificate refuses it...
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https(handle), timeout=10)
    # ...and plain HTTP on the TLS port gets no metrics.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{handle.port}/metrics", timeout=10)
    assert "TLS (NoClientCert)" in handle.logs()


def test_min_version_refuses_older_tls(pki: Pki, secured: StartSecured) -> None:
    handle = secured(tls_config(pki, min_version="TLS13"), verify=str(pki.ca_file))
    old = ssl.create_default_context(cafile=str(pki.ca_file))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", handle.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        old.wrap_socket(raw, server_hostname="127.0.0.1")
    current = ssl.create_default_context(cafile=str(pki.ca_file))
    with (
        socket.create_connection(("127.0.0.1", handle.port), timeout=10) as raw,
        current.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_mutual_tls_requires_a_verified_client_certificate(pki: Pki, secured: StartSecured) -> None:
    web = tls_config(
        pki,
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=str(pki.client_ca_file),
    )
    handle = secured(web, verify=str(pki.ca_file), cert=str(pki.client_pem))
    good = requests.get(https(handle), verify=str(pki.ca_file), cert=str(pki.client_pem))
    assert good.status_code == 200 and "pinpointe_up" in good.text
    for cert in (None, str(pki.stranger_pem)):
        with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one
            requests.get(https(handle), verify=str(pki.ca_file), cert=cert, timeout=10)
    # the health endpoints follow the same rules
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(https(handle, "/-/healthy"), verify=str(pki.ca_file), timeout=10)


@pytest.mark.parametrize("auth_type", ["RequireAndVerifyClientCert", "VerifyClientCertIfGiven"])
def test_client_allowed_sans(pki: Pki, secured: StartSecured, auth_type: str) -> None:
    """A client certificate must name an allowed SAN; with VerifyClientCertIfGiven, as with
    exporter-toolkit, a client without a certificate is then refused too."""
    web = tls_config(
        pki,
        client_auth_type=auth_type,
        client_ca_file=str(pki.client_ca_file),
        client_allowed_sans=["prometheus.example.com"],
    )
    handle = secured(web, verify=str(pki.ca_file), cert=str(pki.client_pem))
    assert requests.get(https(handle), verify=str(pki.ca_file), cert=str(pki.client_pem)).ok
    for cert in (str(pki.other_san_pem), None):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(https(handle), verify=str(pki.ca_file), cert=cert)


def test_the_lifecycle_api_takes_tls_and_basic_auth(pki: Pki, secured: StartSecured) -> None:
    web = {**tls_config(pki), "basic_auth_users": {"ops": bcrypt_hash(PASSWORD)}}
    auth = ("ops", PASSWORD)
    handle = secured(web, args=("--web.enable-lifecycle",), verify=str(pki.ca_file), auth=auth)
    reload_url = https(handle, "/-/reload")
    refused = requests.post(reload_url, verify=str(pki.ca_file), timeout=10)
    assert refused.status_code == 401 and "reloaded" not in refused.text
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"http://127.0.0.1:{handle.port}/-/reload", auth=auth, timeout=10)
    done = requests.post(reload_url, verify=str(pki.ca_file), auth=auth, timeout=10)
    assert done.status_code == 200 and done.text.startswith("configuration reloaded"), done.text


def test_basic_auth(tmp_path: Path, secured: StartSecured) -> None:
    web = {
        "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD), "other": bcrypt_hash("x")},
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
    }
    handle = secured(web, scheme="http", auth=("prometheus", PASSWORD))
    for path in ("/metrics", "/-/healthy", "/-/ready", "/", "/no-such-page"):
        refused = requests.get(handle.url + path, timeout=10)
        assert refused.status_code == 401, path
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="pinpointe-exporter"'
        assert "pinpointe_up" not in refused.text
    for user, password in (("prometheus", "wrong"), ("nobody", PASSWORD), ("other", PASSWORD)):
        response = requests.get(handle.url + "/metrics", auth=(user, password), timeout=10)
        assert response.status_code == 401, user
    for header in ("Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()):
        response = requests.get(handle.url + "/metrics", headers={"Authorization": header})
        assert response.status_code == 401, header
    ok = requests.get(handle.url + "/metrics", auth=("prometheus", PASSWORD), timeout=10)
    assert ok.status_code == 200 and "pinpointe_up" in ok.text
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(handle.url + "/nope", auth=("prometheus", PASSWORD)).status_code == 404
    assert PASSWORD not in handle.logs()


def test_basic_auth_over_mutual_tls(pki: Pki, secured: StartSecured) -> None:
    web = tls_config(
        pki,
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=str(pki.client_ca_file),
    )
    web["basic_auth_users"] = {"prometheus": bcrypt_hash(PASSWORD)}
    tls: dict[str, Any] = {"verify": str(pki.ca_file), "cert": str(pki.client_pem)}
    handle = secured(web, auth=("prometheus", PASSWORD), **tls)
    assert requests.get(https(handle), timeout=10, **tls).status_code == 401
    response = requests.get(https(handle), auth=("prometheus", PASSWORD), timeout=10, **tls)
    assert response.status_code == 200


def test_rate_limit(secured: StartSecured) -> None:
    web = {"rate_limit": {"interval": "1h", "burst": 3}}
    handle = secured(web, scheme="http", probe_path="/-/healthy")
    codes = [requests.get(handle.url + "/metrics", timeout=10).status_code for _ in range(4)]
    # the readiness probe took one token
    assert codes == [200, 200, 429, 429]


@pytest.mark.parametrize(
    "text", ["tls_server_config: {cert_file: nope.crt, key_file: nope.key}\n", "basic: [\n"]
)
def test_bad_web_config_fails_at_start_with_exit_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    result = run_exporter("--demo", f"--web.config.file={path}", "--web.listen-address=127.0.0.1:0")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}: ")
    assert result.stderr.count("\n") == 1  # one clear line, no traceback
    missing = run_exporter("--demo", f"--web.config.file={tmp_path}/absent.yml")
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: {tmp_path}/absent.yml: the web config file cannot be read: "
        "No such file or directory\n"
    )


def test_config_check_validates_the_web_config(pki: Pki, tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": str(pki.cert_file),
                    "key_file": str(pki.key_file),
                },
                "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)},
            }
        )
    )
    result = run_exporter("--demo", "--config.check", f"--web.config.file={web}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"{web}: web config is valid: TLS (NoClientCert), basic auth for 1 user"
    )


def _version() -> str:
    from exporter import __version__

    return __version__


def test_changes_are_picked_up_without_a_restart(tmp_path: Path, secured: StartSecured) -> None:
    """A renewed certificate and a changed password apply from the next connection; a
    broken change is logged and the previous configuration stays in force."""
    old_ca, new_ca = trustme.CA(), trustme.CA()
    old_ca.cert_pem.write_to_path(str(tmp_path / "old-ca.pem"))
    new_ca.cert_pem.write_to_path(str(tmp_path / "new-ca.pem"))

    def install(ca: trustme.CA) -> None:
        issued = ca.issue_cert("127.0.0.1")
        issued.private_key_pem.write_to_path(str(tmp_path / "server.key"))
        issued.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))

    install(old_ca)
    web = {
        "tls_server_config": {
            "cert_file": str(tmp_path / "server.crt"),
            "key_file": str(tmp_path / "server.key"),
        },
        "basic_auth_users": {"prometheus": bcrypt_hash("first")},
    }
    old, new = str(tmp_path / "old-ca.pem"), str(tmp_path / "new-ca.pem")
    handle = secured(web, verify=old, auth=("prometheus", "first"))
    url = https(handle)

    install(new_ca)

    def serves_new_certificate() -> bool:
        return requests.get(url, verify=new, auth=("prometheus", "first"), timeout=5).ok

    wait_for(serves_new_certificate, what="the renewed certificate")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, verify=old, timeout=5)

    web["basic_auth_users"] = {"prometheus": bcrypt_hash("second")}
    (tmp_path / "web-0.yml").write_text(yaml.safe_dump(web))
    wait_for(
        lambda: requests.get(url, verify=new, auth=("prometheus", "second"), timeout=5).ok,
        what="the new password",
    )
    assert requests.get(url, verify=new, auth=("prometheus", "first")).status_code == 401

    (tmp_path / "server.key").write_text("not a key")
    assert requests.get(url, verify=new, auth=("prometheus", "second"), timeout=5).ok
    wait_for(lambda: "the previous one stays in force" in handle.logs(), what="the error")
    assert "tls_server_config.cert_file: cannot load the certificate and key" in handle.logs()
    assert "web config reloaded" in handle.logs()


WEB_RELOAD_OK = "pinpointe_exporter_web_config_last_reload_successful"


@pytest.mark.parametrize("breakage", ["non_utf8_comment", "fifo", "unhashable_key"])
def test_a_web_config_that_cannot_be_read_is_refused_loudly_never_half_applied(
    tmp_path: Path, secured: StartSecured, breakage: str
) -> None:
    """The changed file also holds a new password: until the file can be read whole, the
    old password keeps working, the new one is refused, the log says why at error level
    and the web config reload metric says 0; once it can, the new password applies."""
    handle = secured(
        {"basic_auth_users": {"prometheus": bcrypt_hash("first")}},
        scheme="http",
        auth=("prometheus", "first"),
    )
    path = tmp_path / "web-0.yml"

    def status(password: str) -> int:
        return handle.get("/metrics", auth=("prometheus", password)).status_code

    def web_reload_ok() -> float:
        text = handle.get("/metrics", auth=("prometheus", "first")).text
        return parse_samples(text)[(WEB_RELOAD_OK, frozenset())]

    assert web_reload_ok() == 1
    second = f"basic_auth_users:\n  prometheus: '{bcrypt_hash('second')}'\n"
    if breakage == "non_utf8_comment":
        path.write_bytes(b"# caf\xe9\n" + second.encode())
        problem = "is not valid UTF-8 (byte 0xe9 at line 1, offset 5)"
    elif breakage == "fifo":
        os.mkfifo(tmp_path / "web.fifo")
        os.replace(tmp_path / "web.fifo", path)
        problem = "is a FIFO (named pipe), not a regular file"
    else:
        path.write_text(second + "rate_limit: {[1, 2]: 3}\n")
        problem = "a key must be a single value, not a list or mapping"
    wait_for(lambda: web_reload_ok() == 0, what="the failed web config reload")
    assert status("first") == 200 and status("second") == 401
    errors = [line for line in handle.logs().splitlines() if "level=error" in line]
    assert any(problem in line and "the previous one stays in force" in line for line in errors)
    path.unlink()
    path.write_text(second)
    wait_for(lambda: status("second") == 200, what="the new password once the file is fixed")
    assert status("first") == 401
    text = handle.get("/metrics", auth=("prometheus", "second")).text
    assert parse_samples(text)[(WEB_RELOAD_OK, frozenset())] == 1


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_flood_of_wrong_passwords_costs_one_core_and_a_correct_scraper_gets_through(
    secured: StartSecured,
) -> None:
    """Four clients send wrong passwords as fast as they are answered. bcrypt checks run
    one at a time, so the exporter uses about one core (measured as its CPU time over the
    wall time of the flood) and at most one thread computes at any moment (sampled from
    /proc); the right password, checked once, is answered from the cache throughout."""
    web = {"basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD, cost=11)}}
    handle = secured(web, scheme="http", probe_path="/-/healthy", auth=("prometheus", PASSWORD))
    pid = handle.process.pid
    flooders, per_flooder = 4, 8
    refused: list[int] = []
    done = threading.Event()

    def flood(index: int) -> None:
        with requests.Session() as session:
            for attempt in range(per_flooder):
                wrong = ("prometheus", f"wrong-{index}-{attempt}")
                refused.append(
                    session.get(handle.url + "/metrics", auth=wrong, timeout=60).status_code
                )

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(flooders)]
    samples: list[int] = []
    scrapes: list[int] = []
    latencies: list[float] = []
    cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
    for thread in threads:
        thread.start()

    def sample() -> None:
        while not done.is_set():
            samples.append(running_threads(pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with requests.Session() as scraper:
        while any(thread.is_alive() for thread in threads):
            started = time.monotonic()
            ok = scraper.get(handle.url + "/metrics", auth=("prometheus", PASSWORD), timeout=60)
            latencies.append(time.monotonic() - started)  # reported, never asserted
            scrapes.append(ok.status_code)
            done.wait(0.05)
    for thread in threads:
        thread.join()
    cpu = _cpu_seconds(pid) - cpu_before
    wall = time.monotonic() - wall_before
    done.set()
    sampler.join()
    print(
        f"flood: {cpu:.2f}s CPU in {wall:.2f}s ({cpu / wall:.2f} cores), running threads "
        f"median {statistics.median(samples)} max {max(samples)}; {len(scrapes)} scrapes, "
        f"latency median {statistics.median(latencies) * 1000:.1f} ms "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    assert refused == [401] * flooders * per_flooder
    assert scrapes and set(scrapes) == {200}
    assert cpu / wall < 1.3, f"{cpu:.2f}s of CPU in {wall:.2f}s"
    assert statistics.median(samples) <= 1, samples
