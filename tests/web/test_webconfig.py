"""--web.config.file read in-process: the schema as exporter-toolkit has it, what it
refuses (naming the key), TLS contexts, inline keys, and a reload replacing the policy whole."""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import trustme
import yaml

from exporter.config import files
from exporter.web import WebConfig, WebConfigError, parse_web_config, tls, webconfig
from tests.conftest import (
    ROOT,
    Pki,
    bcrypt_hash,
    tls_config,
    write_server_cert,
)

PASSWORD = "correct horse battery staple"


def test_client_allowed_sans_without_client_certificates_is_refused(pki: Pki) -> None:
    refused = tls_config(pki, client_allowed_sans=["prometheus.example.com"])
    with pytest.raises(WebConfigError, match="has no effect without client certificates"):
        parse_web_config(yaml.safe_dump(refused), "web.yml")


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


def test_relative_paths_are_relative_to_the_web_config(pki: Pki) -> None:
    path = pki.directory / "relative.yml"
    path.write_text("tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
    loaded: WebConfig = webconfig.load_web_config(str(path))
    assert loaded.tls and not loaded.users


def test_an_empty_web_config_changes_nothing(tmp_path: Path) -> None:
    assert not parse_web_config("", "w.yml").tls
    assert not parse_web_config("tls_server_config: {}\n", "w.yml").tls


def test_the_documented_example_web_config_is_valid(tmp_path: Path) -> None:
    docs = ROOT / "docs"
    readme = (docs / "security.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\n# web-config.yml\n", 1)[1].split("```", 1)[0]
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("pinpointe-exporter")
    write_server_cert(server, tmp_path, "exporter")
    client_ca.cert_pem.write_to_path(str(tmp_path / "prometheus-ca.crt"))
    path = tmp_path / "web-config.yml"
    path.write_text(example)
    loaded = webconfig.load_web_config(str(path))
    assert loaded.describe() == "TLS (RequireAndVerifyClientCert), basic auth for 1 user"
    assert loaded.headers == {"X-Content-Type-Options": "nosniff"}


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> str:
    """One TLS handshake over a socket pair; the negotiated version, or SSLError."""
    left, right = socket.socketpair()
    outcome: list[BaseException | str] = []

    def serve() -> None:
        try:
            with server.wrap_socket(left, server_side=True) as tls:
                outcome.append(str(tls.version()))
        except (ssl.SSLError, OSError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(right, server_hostname="127.0.0.1") as tls:
            version = str(tls.version())
            tls.recv(1)  # the server's verdict on our certificate arrives after the handshake
    except (ssl.SSLError, OSError):
        version = ""
    finally:
        right.close()
        thread.join(10)
        left.close()
    if isinstance(outcome[0], BaseException) or not version:
        raise ssl.SSLError(f"handshake refused: {outcome[0]}")
    return version


def client_context(pki: Pki, cert: Path | None = None, curve: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    if cert is not None:
        context.load_cert_chain(str(cert))
    if curve is not None:
        context.set_ecdh_curve(curve)
    return context


def load_in(pki: Pki, web: dict[str, Any]) -> WebConfig:
    path = pki.directory / f"toolkit-{abs(hash(yaml.safe_dump(web)))}.yml"
    path.write_text(yaml.safe_dump(web))
    return webconfig.load_web_config(str(path))


def server_files() -> dict[str, str]:
    return {"cert_file": "server.crt", "key_file": "server.key"}


def test_client_auth_without_a_client_ca_uses_the_system_trust_store(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """toolkit: tls_config_noAuth.good (VerifyClientCertIfGiven) and
    noAuth.good.blocking (RequireAndVerifyClientCert), both without client_ca_file."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.client_ca_file))  # the "system" CAs
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    optional = load_in(
        pki,
        {"tls_server_config": {**server_files(), "client_auth_type": "VerifyClientCertIfGiven"}},
    )
    required = load_in(
        pki,
        {"tls_server_config": {**server_files(), "client_auth_type": "RequireAndVerifyClientCert"}},
    )
    assert optional.describe() == "TLS (VerifyClientCertIfGiven), no basic auth"
    assert optional.ssl_context is not None and required.ssl_context is not None
    assert handshake(optional.ssl_context, client_context(pki)) == "TLSv1.3"
    assert handshake(optional.ssl_context, client_context(pki, pki.client_pem)) == "TLSv1.3"
    assert handshake(required.ssl_context, client_context(pki, pki.client_pem)) == "TLSv1.3"
    for context, cert in (
        (optional, pki.stranger_pem),
        (required, pki.stranger_pem),
        (required, None),
    ):
        with pytest.raises(ssl.SSLError):
            handshake(context.ssl_context, client_context(pki, cert))  # type: ignore[arg-type]


def test_toolkit_header_values_load_as_written() -> None:
    """toolkit: web_config_headers.good (X-XSS-Protection: 1 is a YAML number)."""
    text = """
http_server_config:
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000; includeSubDomains
    X-Content-Type-Options: nosniff
    X-XSS-Protection: 1
    Content-Security-Policy: "default-src 'self' *.test.example.net"
"""
    assert dict(parse_web_config(text, "w.yml").headers) == {
        "X-Frame-Options": "deny",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-XSS-Protection": "1",
        "Content-Security-Policy": "default-src 'self' *.test.example.net",
    }


TOOLKIT_CIPHERS = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
]


def test_tls13_suite_names_are_accepted_and_do_not_restrict_tls13(pki: Pki) -> None:
    """toolkit: web_config_noAuth_allCiphers.good; Go ignores cipher_suites for TLS 1.3."""
    loaded = load_in(
        pki, {"tls_server_config": {**server_files(), "cipher_suites": TOOLKIT_CIPHERS}}
    )
    assert loaded.ssl_context is not None
    assert handshake(loaded.ssl_context, client_context(pki)) == "TLSv1.3"
    tls12 = client_context(pki)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(loaded.ssl_context, tls12) == "TLSv1.2"
    # only TLS 1.3 names: no TLS 1.2 suite is left, as in Go
    only13 = load_in(
        pki, {"tls_server_config": {**server_files(), "cipher_suites": TOOLKIT_CIPHERS[6:9]}}
    )
    assert only13.ssl_context is not None
    assert handshake(only13.ssl_context, client_context(pki)) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(only13.ssl_context, tls12)


def test_some_ciphers_without_server_order(pki: Pki) -> None:
    """toolkit: someCiphers_noOrder.good and noHTTP2Cipher (refused there only because Go
    serves HTTP/2, which this exporter does not)."""
    for extra in (
        {"prefer_server_cipher_suites": False, "min_version": "TLS12", "max_version": "TLS12"},
        {"max_version": "TLS12"},
    ):
        web = {
            "tls_server_config": {
                **server_files(),
                "client_auth_type": "VerifyClientCertIfGiven",
                "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"],  # trustme: ECDSA
                **extra,
            }
        }
        loaded = load_in(pki, web)
        assert loaded.ssl_context is not None
        client = client_context(pki)
        assert handshake(loaded.ssl_context, client) == "TLSv1.2"
        client.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        with pytest.raises(ssl.SSLError):
            handshake(loaded.ssl_context, client)


def test_one_curve_preference_restricts_the_key_exchange(pki: Pki) -> None:
    """toolkit: web_config_noAuth_someCurves.good (CurveP521, TLS 1.3)."""
    loaded = load_in(
        pki,
        {
            "tls_server_config": {
                **server_files(),
                "min_version": "TLS13",
                "curve_preferences": ["CurveP521"],
            }
        },
    )
    assert loaded.ssl_context is not None
    assert handshake(loaded.ssl_context, client_context(pki, curve="secp521r1")) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(loaded.ssl_context, client_context(pki, curve="secp384r1"))


def test_rate_limit_zero_values_mean_what_they_mean_in_the_toolkit() -> None:
    """toolkit: rate_limiter_nonblocking (interval 0, burst 0: no limit) and
    rate_limiter_one_second (interval 1s, burst 0: every request refused)."""
    unlimited = parse_web_config("rate_limit: {interval: 0, burst: 0}\n", "w.yml")
    assert unlimited.describe() == "no TLS, no basic auth"
    request = _Request({})
    assert all(unlimited.guard(request) is None for _ in range(10))  # type: ignore[arg-type]
    blocking = parse_web_config('rate_limit: {interval: "1s", burst: 0}\n', "w.yml")
    assert blocking.guard(request) == (429, {"Retry-After": "1"})  # type: ignore[arg-type]
    assert parse_web_config("rate_limit: {interval: 1.5m, burst: 2}\n", "w.yml").describe() == (
        "no TLS, no basic auth, rate limit 2 per 90s"
    )


@dataclass
class _Request:
    headers: dict[str, str]


TOOLKIT_REFUSALS = [
    # web_config_junk_key: a typo gets a hint, as in the main configuration
    (
        {"tls_server_config": {"cert_filse": "server.crt"}},
        "tls_server_config.cert_filse: unknown key (did you mean cert_file?)",
    ),
    (
        {"tls_server_config": {"cert_file": "", "key_file": "server.key"}},
        "tls_server_config.cert_file: required to serve TLS (or cert)",
    ),
    (
        {"tls_server_config": {"cert": "", "key_file": "server.key"}},
        "tls_server_config.cert_file: required to serve TLS (or cert)",
    ),
    (
        {"tls_server_config": {"cert_file": "server.crt", "key_file": ""}},
        "tls_server_config.key_file: required to serve TLS (or key)",
    ),
    (
        {"tls_server_config": {"cert_file": "server.crt", "key": ""}},
        "tls_server_config.key_file: required to serve TLS (or key)",
    ),
    (
        {"tls_server_config": {"cert_file": "", "key_file": "", "client_auth_type": "x"}},
        "tls_server_config.cert_file: required to serve TLS (or cert)",
    ),
    (
        {"tls_server_config": {"cert_file": "somefile", "key_file": "somefile"}},
        "tls_server_config.cert_file: file {dir}/somefile does not exist",
    ),
    (
        {"tls_server_config": {**server_files(), "client_ca_file": "/dev/null"}},
        "tls_server_config.client_ca_file: client CAs are configured without a client auth policy",
    ),
    (
        {"tls_server_config": {**server_files(), "client_auth_type": "x"}},
        "tls_server_config.client_auth_type: must be one of NoClientCert, "
        "VerifyClientCertIfGiven, RequireAndVerifyClientCert, got 'x'",
    ),
    ({"basic_auth_users": {"john": "doe"}}, "basic_auth_users.john: must be a bcrypt hash"),
    (
        {
            "tls_server_config": {
                **server_files(),
                "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048"],
            }
        },
        "tls_server_config.cipher_suites: unknown or unsupported cipher suite "
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048",
    ),
    (
        {"tls_server_config": {**server_files(), "curve_preferences": ["CurveP257"]}},
        "tls_server_config.curve_preferences: unknown curve CurveP257; known: CurveP256, "
        "CurveP384, CurveP521, X25519",
    ),
    (
        {"tls_server_config": {**server_files(), "min_version": "TLS111"}},
        "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS111'",
    ),
    (
        {"http_server_config": {"headers": {"X-Content-Type-Options": "sniff"}}},
        "http_server_config.headers.X-Content-Type-Options: must be one of nosniff",
    ),
    (
        {"http_server_config": {"headers": {"X-Frame-Options": "foo"}}},
        "http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin",
    ),
    (
        {"http_server_config": {"headers": {"Content-Type": "foo"}}},
        "http_server_config.headers.Content-Type: not an allowed header",
    ),
    # Values of the wrong type are refused naming the key, as Go's strict decoding does,
    # also in a section that serves no TLS because it names no certificate.
    (
        {"tls_server_config": {**server_files(), "min_version": ["TLS12"]}},
        "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got ['TLS12']",
    ),
    (
        {"tls_server_config": {**server_files(), "max_version": {}}},
        "tls_server_config.max_version: must be one of TLS10, TLS11, TLS12, TLS13, got {{}}",
    ),
    (
        {"tls_server_config": {**server_files(), "client_auth_type": [1]}},
        "tls_server_config.client_auth_type: must be one of NoClientCert, "
        "VerifyClientCertIfGiven, RequireAndVerifyClientCert, got [1]",
    ),
    (
        {"tls_server_config": {"cipher_suites": 5}},
        "tls_server_config.cipher_suites: must be a list, got a number",
    ),
    (
        {"tls_server_config": {"min_version": {"TLS13": True}}},
        "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got",
    ),
    (
        {"tls_server_config": {"prefer_server_cipher_suites": ["x"]}},
        "tls_server_config.prefer_server_cipher_suites: must be true or false, got a list",
    ),
    # Differences (README): what Python's ssl cannot do is refused, naming what to change.
    (
        {
            "tls_server_config": {
                **server_files(),
                "curve_preferences": ["CurveP256", "CurveP384", "CurveP521", "X25519"],
            }
        },
        "tls_server_config.curve_preferences: Python's ssl can restrict the key exchange to one "
        "curve only, not a list: keep one curve, or remove curve_preferences",
    ),
    (
        {"tls_server_config": {**server_files(), "client_auth_type": "RequireAnyClientCert"}},
        "tls_server_config.client_auth_type: RequireAnyClientCert accepts client certificates "
        "without verifying them and is not supported",
    ),
    (
        {
            "tls_server_config": {
                **server_files(),
                "max_version": "TLS12",
                "cipher_suites": ["TLS_AES_128_GCM_SHA256"],
            }
        },
        "tls_server_config.cipher_suites: lists only TLS 1.3 suites, which do not apply below "
        "TLS 1.3",
    ),
]


@pytest.mark.parametrize(("web", "message"), TOOLKIT_REFUSALS)
def test_what_the_toolkit_refuses_is_refused_naming_the_key(
    pki: Pki, web: dict[str, Any], message: str
) -> None:
    with pytest.raises(WebConfigError) as raised:
        load_in(pki, web)
    assert str(raised.value).split(": ", 1)[1].startswith(message.format(dir=pki.directory))


def test_junk_is_refused_as_not_a_mapping() -> None:
    """toolkit: web_config_junk.yml."""
    with pytest.raises(WebConfigError) as raised:
        parse_web_config("hWkNKCp3fvIx3jKnsaBI\nTuEjdwNS8A2vYdFbiKqr\n", "w.yml")
    assert str(raised.value) == "w.yml: must be a mapping, got a string"


def inline_tls(pki: Pki) -> str:
    return yaml.safe_dump(
        {"tls_server_config": {"cert": pki.cert_file.read_text(), "key": pki.key_file.read_text()}}
    )


def test_an_inline_key_loads_without_a_writable_temporary_directory(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a read-only root filesystem there is no writable /tmp: the inline cert and key
    are loaded from memory, and nothing of the key is written to disk."""
    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/tmp")
    loaded = parse_web_config(inline_tls(pki), str(pki.directory / "inline.yml"))
    assert loaded.ssl_context is not None
    assert handshake(loaded.ssl_context, client_context(pki)) == "TLSv1.3"


def test_without_memory_files_or_a_temporary_directory_the_message_says_what_to_mount(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/tmp")
    monkeypatch.delattr(os, "memfd_create")  # as on systems without memfd_create
    with pytest.raises(WebConfigError) as raised:
        parse_web_config(inline_tls(pki), "w.yml")
    assert str(raised.value) == (
        "w.yml: tls_server_config.cert: an inline cert needs a writable temporary directory "
        "here and there is none (No such file or directory): mount one (e.g. docker run "
        "--tmpfs /tmp, or an emptyDir at /tmp) or give cert_file"
    )


def test_a_reload_swaps_the_whole_policy_and_leaves_the_old_one_intact(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    first, second = bcrypt_hash("first"), bcrypt_hash("second")
    path.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": first}}))
    web = webconfig.load_web_config(str(path))
    old = web.policy
    path.write_text(
        yaml.safe_dump(
            {
                "basic_auth_users": {"prometheus": second},
                "http_server_config": {"headers": {"X-Frame-Options": "deny"}},
                "rate_limit": {"interval": "1m", "burst": 5},
            }
        )
    )
    web.refresh()
    assert web.policy is not old
    assert web.users["prometheus"] == second.encode() and web.verify("prometheus", b"second")
    assert dict(web.headers) == {"X-Frame-Options": "deny"}
    assert web.describe() == "no TLS, basic auth for 1 user, rate limit 5 per 60s"
    # a request that started with the old policy finishes with it, unchanged
    assert old.users["prometheus"] == first.encode() and dict(old.headers) == {}
    assert old.rate_limit is None and old.passwords.verify("prometheus", b"first")
    with pytest.raises(dataclasses.FrozenInstanceError):
        old.headers = {}  # type: ignore[misc]


def test_an_empty_user_name_is_accepted_as_by_exporter_toolkit() -> None:
    web = parse_web_config(yaml.safe_dump({"basic_auth_users": {"": bcrypt_hash(PASSWORD)}}), "w")
    assert web.verify("", PASSWORD.encode()) and not web.verify("", b"wrong")
    with pytest.raises(WebConfigError, match="a user name must contain no colon"):
        parse_web_config(yaml.safe_dump({"basic_auth_users": {"a:b": bcrypt_hash("x")}}), "w")


@pytest.mark.parametrize("key", ["cert_file", "key_file", "client_ca_file"])
def test_a_file_swapped_for_a_fifo_after_its_check_is_refused_not_waited_on(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """The race an attacker with write access to the directory can win: the file is a
    regular file when checked and a FIFO when opened. Reading it must not block (a
    connection thread reading the web config holds its lock meanwhile)."""
    sources = {
        "cert_file": pki.cert_file,
        "key_file": pki.key_file,
        "client_ca_file": pki.client_ca_file,
    }
    for name, source in sources.items():
        (tmp_path / name).write_bytes(source.read_bytes())
    raced = tmp_path / key
    checked = files.check_regular

    def check_then_swap(path: Path | str, limit: int) -> None:
        checked(path, limit)
        if Path(path) == raced and not raced.is_fifo():
            raced.unlink()
            os.mkfifo(raced)

    monkeypatch.setattr(tls, "check_regular", check_then_swap)
    extra = (
        {
            "client_ca_file": str(tmp_path / "client_ca_file"),
            "client_auth_type": "RequireAndVerifyClientCert",
        }
        if key == "client_ca_file"
        else {}
    )
    config = {
        "tls_server_config": {
            "cert_file": str(tmp_path / "cert_file"),
            "key_file": str(tmp_path / "key_file"),
            **extra,
        }
    }
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            parse_web_config(yaml.safe_dump(config), str(tmp_path / "web.yml"))
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    reading = threading.Thread(target=read, daemon=True)
    reading.start()
    reading.join(60)
    if reading.is_alive():  # release the blocked open, then fail
        with open(raced, "wb"):
            pass
        reading.join(60)
        pytest.fail(f"reading the web config blocked on {key} swapped for a FIFO")
    (error,) = outcome
    assert isinstance(error, WebConfigError)
    assert f"tls_server_config.{key}: file {raced} is a FIFO (named pipe), not a regular file" in (
        str(error)
    )


@pytest.mark.parametrize(
    ("interval", "problem"),
    [
        ('"\u0663s"', "invalid duration '\u0663s'"),
        ("9" * 99, "is longer than 100y, the longest accepted"),
        ('"' + "9" * 400 + 's"', "is longer than 100y, the longest accepted"),
        ('"876001h"', "'876001h' is longer than 100y, the longest accepted"),
        ('"101y"', "duration '101y' is longer than 100y, the longest accepted"),
    ],
    ids=["arabic-indic-digit", "nanoseconds", "400-digits", "hours", "years"],
)
def test_a_rate_limit_interval_takes_ascii_digits_and_at_most_100_years(
    interval: str, problem: str
) -> None:
    with pytest.raises(WebConfigError) as raised:
        parse_web_config(f"rate_limit: {{interval: {interval}, burst: 2}}", "web.yml")
    assert str(raised.value).startswith("web.yml: rate_limit.interval: ")
    assert problem in str(raised.value)


def test_pem_files_with_comments_in_any_encoding_load_as_openssl_reads_them(
    pki: Pki, tmp_path: Path
) -> None:
    """A CA bundle as certifi writes it has UTF-8 comments; others carry Latin-1 bytes."""
    comment = "# Issuer: CN=NetLock Arany (Class Gold) Főtanúsítvány\n".encode()
    for name, source, extra in (
        ("clients-ca.pem", pki.client_ca_file, comment),
        ("server.crt", pki.cert_file, b"# Latin-1 \xe9t\xe9\n"),
        ("server.key", pki.key_file, b""),
    ):
        (tmp_path / name).write_bytes(extra + source.read_bytes())
    config = {
        "tls_server_config": {
            "cert_file": str(tmp_path / "server.crt"),
            "key_file": str(tmp_path / "server.key"),
            "client_ca_file": str(tmp_path / "clients-ca.pem"),
            "client_auth_type": "RequireAndVerifyClientCert",
        }
    }
    policy = parse_web_config(yaml.safe_dump(config), str(tmp_path / "web.yml")).policy
    assert policy.ssl_context is not None
    assert len(policy.ssl_context.get_ca_certs()) == 1
