"""--web.config.file: TLS, mutual TLS and basic auth with real HTTPS clients.

Certificates come from trustme; the exporter runs as a process in --demo mode (its own
simulator), so nothing but the web config differs from a default start.
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme
import yaml

from exporter import webconfig
from exporter.webconfig import WebConfig, WebConfigError, parse_web_config
from tests.conftest import ExporterProcess, parse_samples, run_exporter, spawn_exporter, wait_for

PASSWORD = "correct horse battery staple"
COST = 4  # the lowest bcrypt cost keeps the tests fast; production hashes use 10+


@dataclass
class Pki:
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
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    client_ca = trustme.CA()
    client_ca.cert_pem.write_to_path(str(directory / "clients-ca.pem"))
    client_ca.issue_cert("prometheus.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(directory / "client.pem")
    )
    client_ca.issue_cert("intruder.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(directory / "other-san.pem")
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


def bcrypt_hash(password: str, cost: int = COST) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


StartSecured = Callable[..., ExporterProcess]


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[StartSecured]:
    """start(web_config, probe_kwargs) -> a --demo exporter serving with that web config."""
    started: list[ExporterProcess] = []

    def start(
        web: dict[str, Any], scheme: str = "https", probe_path: str = "/-/ready", **probe: Any
    ) -> ExporterProcess:
        path = tmp_path / f"web-{len(started)}.yml"
        path.write_text(yaml.safe_dump(web))

        def ready(handle: ExporterProcess) -> bool:
            url = f"{scheme}://127.0.0.1:{handle.port}{probe_path}"
            return requests.get(url, timeout=5, **probe).status_code == 200

        handle = spawn_exporter(tmp_path, None, "--demo", f"--web.config.file={path}", ready=ready)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


def https(handle: ExporterProcess, path: str = "/metrics") -> str:
    return f"https://127.0.0.1:{handle.port}{path}"


def tls_config(pki: Pki, **extra: Any) -> dict[str, Any]:
    return {
        "tls_server_config": {
            "cert_file": str(pki.cert_file),
            "key_file": str(pki.key_file),
            **extra,
        }
    }


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


def test_client_allowed_sans(pki: Pki, secured: StartSecured) -> None:
    web = tls_config(
        pki,
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=str(pki.client_ca_file),
        client_allowed_sans=["prometheus.example.com"],
    )
    handle = secured(web, verify=str(pki.ca_file), cert=str(pki.client_pem))
    assert requests.get(https(handle), verify=str(pki.ca_file), cert=str(pki.client_pem)).ok
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(https(handle), verify=str(pki.ca_file), cert=str(pki.other_san_pem))


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
    tls = {"verify": str(pki.ca_file), "cert": str(pki.client_pem)}
    handle = secured(web, auth=("prometheus", PASSWORD), **tls)
    assert requests.get(https(handle), timeout=10, **tls).status_code == 401
    response = requests.get(https(handle), auth=("prometheus", PASSWORD), timeout=10, **tls)
    assert response.status_code == 200


def test_unknown_users_are_checked_against_a_dummy_hash_of_the_same_cost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No timing assertion: the proof is that an unknown user costs one bcrypt check of
    a hash as expensive as the real ones, exactly like a known user with a wrong password."""
    web = parse_web_config(
        yaml.safe_dump({"basic_auth_users": {"alice": bcrypt_hash("secret", cost=6)}}), "w.yml"
    )
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    assert web.verify("mallory", b"secret") is False
    assert web.verify("alice", b"wrong") is False
    assert web.verify("alice", b"secret") is True
    assert web.verify("alice", b"secret") is True  # cached: no second bcrypt check
    assert len(checked) == 3
    unknown, wrong, _ = checked
    assert unknown != web.users["alice"] and wrong == web.users["alice"]
    assert unknown[:7] == wrong[:7] == b"$2b$06$"  # same cost
    # failures are remembered too (as exporter-toolkit does): the same wrong password
    # again costs no check, another one does
    assert web.verify("mallory", b"secret") is False
    assert len(checked) == 3
    assert web.verify("mallory", b"other") is False
    assert len(checked) == 4


def test_rate_limit(secured: StartSecured) -> None:
    web = {"rate_limit": {"interval": "1h", "burst": 3}}
    handle = secured(web, scheme="http", probe_path="/-/healthy")
    codes = [requests.get(handle.url + "/metrics", timeout=10).status_code for _ in range(4)]
    # the readiness probe took one token
    assert codes == [200, 200, 429, 429]


WEB_ERRORS = [
    ({"tls_server_config": {"cert_file": "server.crt"}}, "tls_server_config.key_file: required"),
    ({"tls_server_config": {"cert_fil": "x"}}, "tls_server_config.cert_fil: unknown key"),
    ({"basic_auth_user": {}}, "basic_auth_user: unknown key"),
    (
        {"tls_server_config": {"cert_file": "missing.crt", "key_file": "server.key"}},
        "tls_server_config.cert_file: file {dir}/missing.crt does not exist",
    ),
    (
        {"tls_server_config": {"cert_file": "server.key", "key_file": "server.key"}},
        "tls_server_config.cert_file: cannot load the certificate and key",
    ),
    (
        {
            "tls_server_config": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "client_ca_file": "ca.pem",
            }
        },
        "tls_server_config.client_ca_file: client CAs are configured without a client auth "
        "policy: set client_auth_type: RequireAndVerifyClientCert",
    ),
    (
        {
            "tls_server_config": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "client_auth_type": "RequireAnyClientCert",
                "client_ca_file": "ca.pem",
            }
        },
        "tls_server_config.client_auth_type: RequireAnyClientCert accepts client certificates "
        "without verifying them and is not supported",
    ),
    (
        {
            "tls_server_config": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "min_version": "TLS14",
            }
        },
        "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS14'",
    ),
    (
        {
            "tls_server_config": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "cipher_suites": ["TLS_FOO"],
            }
        },
        "tls_server_config.cipher_suites: unknown or unsupported cipher suite TLS_FOO",
    ),
    ({"basic_auth_users": {"alice": "plaintext"}}, "basic_auth_users.alice: must be a bcrypt hash"),
    (
        {"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
        "http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin",
    ),
    ({"rate_limit": {"interval": "1s", "burst": "x"}}, "rate_limit.burst: must be an integer"),
]


@pytest.mark.parametrize(("web", "message"), WEB_ERRORS)
def test_bad_web_config_is_refused_naming_the_key(
    pki: Pki, tmp_path: Path, web: dict[str, Any], message: str
) -> None:
    path = pki.directory / f"bad-{abs(hash(message))}.yml"
    path.write_text(yaml.safe_dump(web))
    with pytest.raises(WebConfigError) as raised:
        webconfig.load_web_config(str(path))
    assert str(raised.value).startswith(f"{path}: " + message.format(dir=pki.directory))


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
        f"error: {tmp_path}/absent.yml: cannot read the web config file: "
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


def test_relative_paths_are_relative_to_the_web_config(pki: Pki) -> None:
    path = pki.directory / "relative.yml"
    path.write_text("tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
    loaded: WebConfig = webconfig.load_web_config(str(path))
    assert loaded.tls and not loaded.users


def test_an_empty_web_config_changes_nothing(tmp_path: Path) -> None:
    assert not parse_web_config("", "w.yml").tls
    assert not parse_web_config("tls_server_config: {}\n", "w.yml").tls


def _version() -> str:
    from exporter import __version__

    return __version__


def test_the_readme_example_web_config_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\n# web-config.yml\n", 1)[1].split("```", 1)[0]
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("pinpointe-exporter")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "exporter.crt"))
    server.private_key_pem.write_to_path(str(tmp_path / "exporter.key"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "prometheus-ca.crt"))
    path = tmp_path / "web-config.yml"
    path.write_text(example)
    loaded = webconfig.load_web_config(str(path))
    assert loaded.describe() == "TLS (RequireAndVerifyClientCert), basic auth for 1 user"
    assert loaded.headers == {"X-Content-Type-Options": "nosniff"}


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
