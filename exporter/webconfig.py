"""--web.config.file: TLS and basic auth for every HTTP endpoint.

The YAML schema is Prometheus exporter-toolkit's, so a web config written for
node_exporter or Prometheus works here::

    tls_server_config:
      cert_file: server.crt          # or cert: <PEM text>
      key_file: server.key           # or key: <PEM text>
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: clients-ca.crt # or client_ca: <PEM text>
      client_allowed_sans: [prometheus.example.com]
      min_version: TLS12             # TLS10 .. TLS13; max_version likewise
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]  # TLS 1.2 only
      prefer_server_cipher_suites: true
    http_server_config:
      http2: true                    # accepted; this server speaks HTTP/1.1
      headers: {X-Content-Type-Options: nosniff}
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\\n')
    rate_limit: {interval: 1s, burst: 20}

Differences from exporter-toolkit, all refused at start with a message rather than
silently weakened: ``RequestClientCert`` and ``RequireAnyClientCert`` (they accept
unverified certificates, which Python's ssl cannot do) and ``curve_preferences``.
Relative file names are relative to the web config file's directory.

Like exporter-toolkit, changes are picked up while running: before each new
connection the web config file and the certificate, key and CA files it names are
checked (a stat each), and when one changed the whole file is read again. A renewed
certificate is served from the next connection on; a broken change is logged and the
previous configuration stays in force.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import math
import os
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from exporter.config import parse_duration

log = logging.getLogger("exporter.webconfig")


class WebConfigError(ValueError):
    """A web config problem, phrased for the user: ``<file>: <key path>: <problem>``."""


TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# Go's TLS 1.2 cipher suite names (what exporter-toolkit takes) -> OpenSSL's names.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
}
# exporter-toolkit's allowed response headers; value checks as exporter-toolkit's.
RESPONSE_HEADERS = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
BCRYPT_MAX_PASSWORD = 72  # bcrypt uses only the first 72 bytes, as htpasswd and Go do
REALM = "pinpointe-exporter"
_CACHE_LIMIT = 1024

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)

Refusal = tuple[int, dict[str, str]]


class WebConfig:
    """What --web.config.file asks for: a TLS context, users, response headers, a rate limit.

    ``guard(handler)`` decides each request (None: serve it; else the status and headers
    of the refusal); ``peer_allowed(tls_socket)`` checks a client certificate's SANs.
    """

    def __init__(
        self,
        source: str,
        ssl_context: ssl.SSLContext | None = None,
        client_auth_type: str = "NoClientCert",
        allowed_sans: tuple[str, ...] = (),
        users: Mapping[str, bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        rate_limit: tuple[float, int] | None = None,
        watched: tuple[str, ...] = (),
    ) -> None:
        self.source = source
        self.ssl_context = ssl_context
        self.client_auth_type = client_auth_type
        self.allowed_sans = frozenset(_normal_san(s) for s in allowed_sans)
        self.users = dict(users or {})
        self.headers = dict(headers or {})
        self.rate_limit = rate_limit
        self._lock = threading.Lock()
        self._verified: set[bytes] = set()
        self._cache_key = secrets.token_bytes(32)
        self._dummy_hash = b""
        if self.users:
            cost = max(_bcrypt_cost(h) for h in self.users.values())
            self._dummy_hash = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))
        self._tokens = float(rate_limit[1]) if rate_limit else 0.0
        self._refilled = time.monotonic()
        self._watched = watched
        self._stamp = _stamp(watched)
        self._reload_lock = threading.Lock()

    # -- reloading ---------------------------------------------------------------
    def refresh(self) -> None:
        """Read the web config again if it, or a file it names, changed since last time."""
        if not self._watched or _stamp(self._watched) == self._stamp:
            return
        with self._reload_lock:
            stamp = _stamp(self._watched)
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                fresh = load_web_config(self.source)
            except WebConfigError as exc:
                log.error(
                    f"the changed web config is not valid, the previous one stays in force: {exc}",
                    extra={"fields": {"file": self.source}},
                )
                return
            with self._lock:
                self.ssl_context = fresh.ssl_context
                self.client_auth_type = fresh.client_auth_type
                self.allowed_sans = fresh.allowed_sans
                self.users = fresh.users
                self.headers = fresh.headers
                self.rate_limit = fresh.rate_limit
                self._dummy_hash = fresh._dummy_hash
                self._verified.clear()
                self._tokens = fresh._tokens
                self._watched = fresh._watched
                self._stamp = _stamp(fresh._watched)
            log.info(
                "web config reloaded",
                extra={"fields": {"file": self.source, "web": self.describe()}},
            )

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    def describe(self) -> str:
        parts = [f"TLS ({self.client_auth_type})" if self.tls else "no TLS"]
        count = len(self.users)
        users = f"{count} user" if count == 1 else f"{count} users"
        parts.append(f"basic auth for {users}" if self.users else "no basic auth")
        if self.rate_limit:
            parts.append(f"rate limit {self.rate_limit[1]} per {self.rate_limit[0]:g}s")
        return ", ".join(parts)

    # -- per request -------------------------------------------------------------
    def guard(self, handler: BaseHTTPRequestHandler) -> Refusal | None:
        if self.rate_limit is not None and not self._take_token():
            retry_after = str(max(1, math.ceil(self.rate_limit[0])))
            return HTTPStatus.TOO_MANY_REQUESTS, {"Retry-After": retry_after}
        if not self.users:
            return None
        credentials = _basic_credentials(handler.headers.get("Authorization"))
        if credentials is not None and self.verify(*credentials):
            return None
        return HTTPStatus.UNAUTHORIZED, {"WWW-Authenticate": f'Basic realm="{REALM}"'}

    def verify(self, user: str, password: bytes) -> bool:
        """bcrypt check; an unknown user is checked against a dummy hash of the same cost,
        so the time taken does not tell who exists. Successes are cached (keyed by an HMAC
        of user and password) so a scrape does not pay for bcrypt every time."""
        key = hmac.new(self._cache_key, user.encode() + b"\0" + password, hashlib.sha256).digest()
        with self._lock:
            if key in self._verified:
                return True
        stored = self.users.get(user)
        matched = bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], stored or self._dummy_hash)
        if not (matched and stored is not None):
            return False
        with self._lock:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified.add(key)
        return True

    def peer_allowed(self, connection: ssl.SSLSocket) -> bool:
        """With client_allowed_sans, the client certificate must name one of them."""
        if not self.allowed_sans:
            return True
        certificate = connection.getpeercert() or {}
        names: Any = certificate.get("subjectAltName", ())
        return any(_normal_san(str(entry[1])) in self.allowed_sans for entry in names)

    def _take_token(self) -> bool:
        assert self.rate_limit is not None
        interval, burst = self.rate_limit
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(burst), self._tokens + (now - self._refilled) / interval)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def _stamp(paths: tuple[str, ...]) -> tuple[tuple[int, int, int] | None, ...]:
    stamps: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(stamps)


def _bcrypt_cost(hashed: bytes) -> int:
    match = _BCRYPT_HASH.match(hashed.decode("ascii", "replace"))
    return int(match[1]) if match else 10


def _normal_san(value: str) -> str:
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def _basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


# -- loading -------------------------------------------------------------------------
def load_web_config(path: str) -> WebConfig:
    """Read and validate a web config file; raise WebConfigError naming what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read the web config file: {exc.strerror}") from None
    return parse_web_config(text, path, watch=True)


def parse_web_config(text: str, source: str, watch: bool = False) -> WebConfig:
    """Validate web config text; with ``watch``, ``source`` and the files it names are
    watched for changes (see WebConfig.refresh)."""
    reader = _Reader(source, Path(source).parent)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise reader.fail("", f"invalid YAML{where}") from None
    if document is None:
        return WebConfig(source, watched=(source,) if watch else ())
    top = reader.mapping(document, "", _TOP_KEYS)
    tls, auth_type, sans = _read_tls(reader, top.get("tls_server_config"))
    headers = _read_http(reader, top.get("http_server_config"))
    users = _read_users(reader, top.get("basic_auth_users"))
    rate_limit = _read_rate_limit(reader, top.get("rate_limit"))
    watched = (source, *reader.files) if watch else ()
    return WebConfig(source, tls, auth_type, sans, users, headers, rate_limit, watched)


class _Reader:
    def __init__(self, source: str, directory: Path) -> None:
        self.source = source
        self.directory = directory
        self.files: list[str] = []  # every file the config names, to watch for changes

    def fail(self, path: str, problem: str) -> WebConfigError:
        return WebConfigError(
            f"{self.source}: {path}: {problem}" if path else f"{self.source}: {problem}"
        )

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...] | None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if not isinstance(key, str) or (allowed is not None and key not in allowed):
                where = f"{path}.{key}" if path else str(key)
                raise self.fail(where, "unknown key")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "must be a non-empty string")
        return value

    def strings(self, value: Any, path: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, "must be a list of strings")
        return [self.string(item, f"{path}[{i}]") for i, item in enumerate(value)]

    def file(self, value: Any, path: str) -> str:
        name = self.string(value, path)
        resolved = Path(name) if Path(name).is_absolute() else self.directory / name
        if not resolved.is_file():
            raise self.fail(path, f"file {resolved} does not exist")
        if not os.access(resolved, os.R_OK):
            raise self.fail(path, f"file {resolved} is not readable")
        self.files.append(str(resolved))
        return str(resolved)

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value


def _read_tls(reader: _Reader, raw: Any) -> tuple[ssl.SSLContext | None, str, tuple[str, ...]]:
    path = "tls_server_config"
    tls = reader.mapping(raw, path, _TLS_KEYS)
    enabling = (
        "cert",
        "key",
        "client_ca",
        "cert_file",
        "key_file",
        "client_ca_file",
        "client_auth_type",
    )
    if not any(tls.get(key) for key in enabling):
        return None, "NoClientCert", ()
    for inline, file_key in (
        ("cert", "cert_file"),
        ("key", "key_file"),
        ("client_ca", "client_ca_file"),
    ):
        if tls.get(inline) and tls.get(file_key):
            raise reader.fail(f"{path}.{inline}", f"give {inline} or {file_key}, not both")
    if not (tls.get("cert") or tls.get("cert_file")):
        raise reader.fail(f"{path}.cert_file", "required to serve TLS (or cert)")
    if not (tls.get("key") or tls.get("key_file")):
        raise reader.fail(f"{path}.key_file", "required to serve TLS (or key)")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_certificate(reader, context, tls)

    versions = {}
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = tls.get(key, default)
        if name not in TLS_VERSIONS:
            raise reader.fail(
                f"{path}.{key}", f"must be one of {', '.join(TLS_VERSIONS)}, got {name!r}"
            )
        versions[key] = TLS_VERSIONS[name]
    if versions["min_version"] > versions["max_version"]:
        raise reader.fail(f"{path}.min_version", "is above max_version")
    try:
        context.minimum_version = versions["min_version"]
        context.maximum_version = versions["max_version"]
    except (ValueError, ssl.SSLError) as exc:
        raise reader.fail(f"{path}.min_version", f"not supported here: {exc}") from None

    auth_type = tls.get("client_auth_type") or "NoClientCert"
    where = f"{path}.client_auth_type"
    if auth_type in _UNVERIFIED_CLIENT_AUTH:
        raise reader.fail(
            where,
            f"{auth_type} accepts client certificates without verifying them and is not "
            "supported; use RequireAndVerifyClientCert with client_ca_file",
        )
    if auth_type not in CLIENT_AUTH_TYPES:
        raise reader.fail(
            where, f"must be one of {', '.join(CLIENT_AUTH_TYPES)}, got {auth_type!r}"
        )
    has_ca = bool(tls.get("client_ca") or tls.get("client_ca_file"))
    if has_ca and auth_type == "NoClientCert":
        raise reader.fail(
            f"{path}.client_ca_file",
            "client CAs are configured without a client auth policy: "
            "set client_auth_type: RequireAndVerifyClientCert",
        )
    if not has_ca and auth_type != "NoClientCert":
        raise reader.fail(f"{path}.client_ca_file", f"required with client_auth_type {auth_type}")
    if has_ca:
        _load_client_ca(reader, context, tls)
    context.verify_mode = CLIENT_AUTH_TYPES[auth_type]

    sans = tuple(reader.strings(tls.get("client_allowed_sans"), f"{path}.client_allowed_sans"))
    if sans and auth_type != "RequireAndVerifyClientCert":
        raise reader.fail(
            f"{path}.client_allowed_sans", "requires client_auth_type RequireAndVerifyClientCert"
        )

    ciphers = reader.strings(tls.get("cipher_suites"), f"{path}.cipher_suites")
    unknown = [c for c in ciphers if c not in CIPHER_SUITES]
    if unknown:
        raise reader.fail(
            f"{path}.cipher_suites",
            f"unknown or unsupported cipher suite {unknown[0]}; known: {', '.join(CIPHER_SUITES)}",
        )
    if ciphers:
        context.set_ciphers(":".join(dict.fromkeys(CIPHER_SUITES[c] for c in ciphers)))
    if tls.get("curve_preferences"):
        raise reader.fail(
            f"{path}.curve_preferences", "is not supported; remove it to use OpenSSL's defaults"
        )
    prefer = tls.get("prefer_server_cipher_suites", True)
    if reader.boolean(prefer, f"{path}.prefer_server_cipher_suites"):
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return context, auth_type, sans


def _load_certificate(reader: _Reader, context: ssl.SSLContext, tls: dict[str, Any]) -> None:
    path = "tls_server_config"
    with tempfile.TemporaryDirectory(prefix="pinpointe-web-") as scratch:
        files = {}
        for inline, file_key in (("cert", "cert_file"), ("key", "key_file")):
            if tls.get(file_key):
                files[inline] = reader.file(tls[file_key], f"{path}.{file_key}")
            else:
                target = Path(scratch) / inline
                target.touch(mode=0o600)
                target.write_text(reader.string(tls[inline], f"{path}.{inline}"), encoding="utf-8")
                files[inline] = str(target)
        try:
            context.load_cert_chain(files["cert"], files["key"])
        except (ssl.SSLError, OSError) as exc:
            raise reader.fail(
                f"{path}.cert_file",
                f"cannot load the certificate and key ({exc.strerror or exc}): "
                "they must be PEM files and the key must belong to the certificate",
            ) from None


def _load_client_ca(reader: _Reader, context: ssl.SSLContext, tls: dict[str, Any]) -> None:
    path = "tls_server_config"
    try:
        if tls.get("client_ca_file"):
            context.load_verify_locations(
                cafile=reader.file(tls["client_ca_file"], f"{path}.client_ca_file")
            )
        else:
            context.load_verify_locations(
                cadata=reader.string(tls["client_ca"], f"{path}.client_ca")
            )
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise reader.fail(
            f"{path}.client_ca_file", f"cannot load the client CA certificates ({exc})"
        ) from None
    if not context.get_ca_certs():
        raise reader.fail(f"{path}.client_ca_file", "holds no CA certificate")


def _read_http(reader: _Reader, raw: Any) -> dict[str, str]:
    path = "http_server_config"
    http = reader.mapping(raw, path, ("http2", "headers"))
    if "http2" in http:
        reader.boolean(http["http2"], f"{path}.http2")  # accepted; HTTP/1.1 is served
    headers: dict[str, str] = {}
    for name, value in reader.mapping(http.get("headers"), f"{path}.headers", None).items():
        where = f"{path}.headers.{name}"
        canonical = next((h for h in RESPONSE_HEADERS if h.lower() == name.lower()), None)
        if canonical is None:
            raise reader.fail(
                where, f"not an allowed header; allowed: {', '.join(RESPONSE_HEADERS)}"
            )
        text = reader.string(value, where)
        allowed = RESPONSE_HEADERS[canonical]
        if allowed is not None and text.lower() not in allowed:
            raise reader.fail(where, f"must be one of {', '.join(allowed)}")
        if any(c in text for c in "\r\n"):
            raise reader.fail(where, "must be one line")
        headers[canonical] = text
    return headers


def _read_users(reader: _Reader, raw: Any) -> dict[str, bytes]:
    path = "basic_auth_users"
    users: dict[str, bytes] = {}
    for name, value in reader.mapping(raw, path, None).items():
        where = f"{path}.{name}"
        if not name or ":" in name:
            raise reader.fail(where, "a user name must be non-empty and contain no colon")
        hashed = value if isinstance(value, str) else ""
        match = _BCRYPT_HASH.match(hashed.strip())
        if match is None or not 4 <= int(match[1]) <= 31:
            raise reader.fail(
                where,
                "must be a bcrypt hash like $2y$10$... (make one with: pinpointe-exporter "
                "--web.hash-password, which reads the password from stdin)",
            )
        users[name] = hashed.strip().encode()
    return users


def _read_rate_limit(reader: _Reader, raw: Any) -> tuple[float, int] | None:
    path = "rate_limit"
    limit = reader.mapping(raw, path, ("interval", "burst"))
    if not limit:
        return None
    interval_text = limit.get("interval", "0s")
    try:
        interval = parse_duration(str(interval_text))
    except ValueError as exc:
        raise reader.fail(f"{path}.interval", str(exc)) from None
    if interval == 0:
        return None
    burst = limit.get("burst", 0)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise reader.fail(f"{path}.burst", "must be an integer of at least 1")
    return interval, burst
