"""--web.config.file: TLS and basic auth for every HTTP endpoint.

The YAML schema is Prometheus exporter-toolkit's, so a web config written for
node_exporter or Prometheus works here::

    tls_server_config:
      cert_file: server.crt          # or cert: <PEM text>
      key_file: server.key           # or key: <PEM text>
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: clients-ca.crt # or client_ca: <PEM text>; none: the system's CAs
      client_allowed_sans: [prometheus.example.com]
      min_version: TLS12             # TLS10 .. TLS13; max_version likewise
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]  # TLS 1.2 only
      prefer_server_cipher_suites: true
      curve_preferences: [X25519]    # one curve (Python's ssl takes no list)
    http_server_config:
      http2: true                    # accepted; this server speaks HTTP/1.1
      headers: {X-Content-Type-Options: nosniff}
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\\n')
    rate_limit: {interval: 1s, burst: 20}

This module reads the schema and keeps the policy in force; webtls.py builds the TLS
context, webpolicy.py decides each request. Relative file names are relative to the
web config file's directory.

Like exporter-toolkit, changes are picked up while running: before each new
connection the web config file and the certificate, key and CA files it names are
checked (a stat each), and when one changed the whole file is read again into a new
policy that replaces the old one whole. A renewed certificate is served from the next
connection on; a broken change is logged and the previous configuration stays in force.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import MappingProxyType
from typing import Any

from exporter.config import parse_duration
from exporter.config.files import FileProblem, read_text
from exporter.config.units import MAX_DURATION
from exporter.config.yamlreader import Reader, kind
from exporter.web.policy import BCRYPT_HASH, Passwords, Policy, RateLimit, Refusal, normal_san
from exporter.web.tls import read_tls

log = logging.getLogger("exporter.webconfig")


class WebConfigError(ValueError):
    """A web config problem, phrased for the user: ``<file>: <key path>: <problem>``."""


# exporter-toolkit's allowed response headers; value checks as exporter-toolkit's.
RESPONSE_HEADERS = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
# Go's time.ParseDuration, which exporter-toolkit's rate_limit.interval takes.
_GO_DURATION = re.compile(r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class WebConfig:
    """The web config in force: one immutable Policy, replaced whole when the file or a
    file it names changes. Each request reads the policy once."""

    def __init__(self, source: str, policy: Policy, watch: bool = False) -> None:
        self.source = source
        self.policy = policy
        self._watched = (source, *policy.watched) if watch else ()
        self._stamp = _stamp(self._watched)
        self._reload_lock = threading.Lock()
        # Told the outcome of every reload (True: applied), for the reload metrics.
        self.on_reload: Callable[[bool], None] = lambda applied: None

    # -- what the server asks, answered from the policy in force --------------------
    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return self.policy.ssl_context

    @property
    def tls(self) -> bool:
        return self.policy.tls

    @property
    def users(self) -> Mapping[str, bytes]:
        return self.policy.users

    @property
    def headers(self) -> Mapping[str, str]:
        return self.policy.headers

    def describe(self) -> str:
        return self.policy.describe()

    def guard(self, handler: BaseHTTPRequestHandler) -> Refusal | None:
        return self.policy.guard(handler)

    def verify(self, user: str, password: bytes) -> bool:
        return self.policy.passwords.verify(user, password)

    # -- reloading ----------------------------------------------------------------
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
                self.on_reload(False)
                return
            self._watched = fresh._watched
            self._stamp = _stamp(self._watched)
            self.policy = fresh.policy
            log.info(
                "web config reloaded",
                extra={"fields": {"file": self.source, "web": self.describe()}},
            )
            self.on_reload(True)


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


# -- loading -------------------------------------------------------------------------
# Certificates given inline make a web config a few KiB; this is far more.
MAX_WEB_CONFIG_SIZE = 1024 * 1024


def load_web_config(path: str) -> WebConfig:
    """Read and validate a web config file; raise WebConfigError naming what is wrong.
    Whatever the file holds, the only exception is WebConfigError."""
    try:
        text = read_text(path, MAX_WEB_CONFIG_SIZE)
    except FileProblem as exc:
        raise WebConfigError(f"{path}: the web config file {exc.problem}") from None
    try:
        return parse_web_config(text, path, watch=True)
    except WebConfigError:
        raise
    except Exception as exc:  # a value no check foresaw is still a web config error
        raise WebConfigError(f"{path}: {type(exc).__name__}: {exc}") from None


def parse_web_config(text: str, source: str, watch: bool = False) -> WebConfig:
    """Validate web config text; with ``watch``, ``source`` and the files it names are
    watched for changes (see WebConfig.refresh)."""
    reader = Reader(source, WebConfigError)
    top = reader.section(reader.load(text), "", _TOP_KEYS)
    tls = read_tls(reader, top.get("tls_server_config"), Path(source).parent)
    headers = _read_headers(reader, top.get("http_server_config"))
    users = _read_users(reader, top.get("basic_auth_users"))
    rate_limit = _read_rate_limit(reader, top.get("rate_limit"))
    policy = Policy(
        ssl_context=tls.context if tls else None,
        client_auth_type=tls.client_auth_type if tls else "NoClientCert",
        allowed_sans=frozenset(normal_san(s) for s in tls.allowed_sans) if tls else frozenset(),
        passwords=Passwords(users),
        headers=MappingProxyType(headers),
        rate_limit=rate_limit,
        watched=tls.files if tls else (),
    )
    return WebConfig(source, policy, watch)


def _read_headers(reader: Reader, raw: Any) -> dict[str, str]:
    path = "http_server_config"
    http = reader.section(raw, path, ("http2", "headers"))
    if "http2" in http:
        reader.boolean(http["http2"], f"{path}.http2")  # accepted; HTTP/1.1 is served
    headers: dict[str, str] = {}
    for name, value in reader.section(http.get("headers"), f"{path}.headers", None).items():
        where = f"{path}.headers.{name}"
        canonical = next((h for h in RESPONSE_HEADERS if h.lower() == name.lower()), None)
        if canonical is None:
            raise reader.fail(
                where, f"not an allowed header; allowed: {', '.join(RESPONSE_HEADERS)}"
            )
        text = _scalar_text(reader, value, where)
        allowed = RESPONSE_HEADERS[canonical]
        if allowed is not None and text.lower() not in allowed:
            raise reader.fail(where, f"must be one of {', '.join(allowed)}")
        if any(c in text for c in "\r\n"):
            raise reader.fail(where, "must be one line")
        headers[canonical] = text
    return headers


def _scalar_text(reader: Reader, value: Any, where: str) -> str:
    """A header value as Go's YAML reads it into a string: ``X-XSS-Protection: 1`` is
    the text "1" (YAML made it a number), ``true`` is "true", nothing is ""."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    raise reader.fail(where, f"must be a string, got {kind(value)}")


def _read_users(reader: Reader, raw: Any) -> dict[str, bytes]:
    path = "basic_auth_users"
    users: dict[str, bytes] = {}
    for name, value in reader.section(raw, path, None).items():
        where = f"{path}.{name}"
        if ":" in name:  # basic auth splits user and password at the first colon
            raise reader.fail(where, "a user name must contain no colon")
        hashed = value if isinstance(value, str) else ""
        match = BCRYPT_HASH.match(hashed.strip())
        if match is None or not 4 <= int(match[1]) <= 31:
            raise reader.fail(
                where,
                "must be a bcrypt hash like $2y$10$... (make one with: pinpointe-exporter "
                "--web.hash-password, which reads the password from stdin)",
            )
        users[name] = hashed.strip().encode()
    return users


def _read_rate_limit(reader: Reader, raw: Any) -> RateLimit | None:
    """exporter-toolkit's meaning: no limit when interval is 0 (or absent); else a
    bucket of ``burst`` requests refilled one per interval, and a burst of 0 (or absent)
    refuses every request."""
    path = "rate_limit"
    limit = reader.section(raw, path, ("interval", "burst"))
    interval = _interval(reader, limit.get("interval", 0), f"{path}.interval")
    if interval <= 0:
        return None
    burst = limit.get("burst", 0)
    if isinstance(burst, bool) or not isinstance(burst, int):
        raise reader.fail(f"{path}.burst", f"must be an integer, got {kind(burst)}")
    if burst <= 0:
        log.warning(
            "rate_limit.burst is 0: every request is refused with 429, as exporter-toolkit "
            "does; remove rate_limit (or set interval: 0) for no limit",
            extra={"fields": {"file": reader.source}},
        )
    return RateLimit(interval, burst)


def _interval(reader: Reader, value: Any, where: str) -> float:
    """A Go duration (``1s``, ``1.5m``, ``500ms``), a Prometheus one (``1d``), or a
    number of nanoseconds as Go's YAML reads a bare number into a duration; at most
    100 years either way."""
    seconds = _seconds(reader, value, where)
    if not abs(seconds) <= MAX_DURATION:
        raise reader.fail(where, f"{str(value)[:40]!r} is longer than 100y, the longest accepted")
    return seconds


def _seconds(reader: Reader, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise reader.fail(where, f"must be a duration like 1s or 1m, got {kind(value)}")
    if isinstance(value, int):
        return value * 1e-9
    text = value.strip()
    if text == "0":
        return 0.0
    if _GO_DURATION.fullmatch(text):
        sign = -1.0 if text.startswith("-") else 1.0
        parts = re.findall(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)", text)
        return sign * sum(float(number) * _GO_UNITS[unit] for number, unit in parts)
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise reader.fail(where, str(exc)) from None
