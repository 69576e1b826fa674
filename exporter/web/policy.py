"""What the web config decides for each request: rate limit, basic auth, extra headers.

A ``Policy`` is built once per load of the web config and never changed; a reload
builds a new one and swaps it in whole (webconfig.WebConfig), so a request sees one
policy from start to end. Its two stateful helpers keep their own locks: the token
bucket of the rate limit, and the password checker.

Passwords: bcrypt is slow on purpose (a cost-10 check takes tens of milliseconds of a
core, and the bcrypt library releases the GIL). Checks run one at a time, as in
exporter-toolkit, so a flood of wrong passwords costs at most one core, and outcomes
are cached, so a scraper with the right password is answered from the cache however
busy the check is. Successes and failures are cached apart: a flood of different wrong
passwords can push out other failures, never a success.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from types import MappingProxyType
from typing import Any

import bcrypt

BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
BCRYPT_MAX_PASSWORD = 72  # bcrypt uses only the first 72 bytes, as htpasswd and Go do
REALM = "pinpointe-exporter"
CACHE_LIMIT = 1024  # remembered outcomes of each kind (success, failure)

Refusal = tuple[int, dict[str, str]]


class RateLimit:
    """A token bucket as Go's rate.Limiter: ``burst`` tokens, one more every ``interval``.
    A burst of 0 refuses every request (so does exporter-toolkit)."""

    def __init__(self, interval: float, burst: int) -> None:
        self.interval = interval
        self.burst = burst
        self._tokens = float(max(burst, 0))
        self._refilled = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            elapsed = now - self._refilled
            self._tokens = min(float(max(self.burst, 0)), self._tokens + elapsed / self.interval)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def refusal(self) -> Refusal:
        return HTTPStatus.TOO_MANY_REQUESTS, {"Retry-After": str(max(1, math.ceil(self.interval)))}


class Passwords:
    """bcrypt checks of basic auth credentials, one at a time, with cached outcomes."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users: Mapping[str, bytes] = MappingProxyType(dict(users))
        self._cache_key = secrets.token_bytes(32)
        self._dummy_hash = b""
        if self.users:
            cost = max(bcrypt_cost(h) for h in self.users.values())
            self._dummy_hash = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))
        self._check_lock = threading.Lock()  # one bcrypt check at a time
        self._cache_lock = threading.Lock()
        self._passed: OrderedDict[bytes, None] = OrderedDict()
        self._failed: OrderedDict[bytes, None] = OrderedDict()

    def verify(self, user: str, password: bytes) -> bool:
        """An unknown user is checked against a dummy hash of the same cost, so the time
        taken does not tell who exists."""
        stored = self.users.get(user)
        hashed = stored or self._dummy_hash
        key = hmac.new(
            self._cache_key, b"\0".join((user.encode(), hashed, password)), hashlib.sha256
        ).digest()
        known = self._recall(key)
        if known is not None:
            return known
        with self._check_lock:
            known = self._recall(key)  # checked by another request while this one waited
            if known is not None:
                return known
            matched = bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed)
            passed = matched and stored is not None
            self._remember(key, passed)
        return passed

    def _recall(self, key: bytes) -> bool | None:
        with self._cache_lock:
            for outcome, cache in ((True, self._passed), (False, self._failed)):
                if key in cache:
                    cache.move_to_end(key)
                    return outcome
        return None

    def _remember(self, key: bytes, passed: bool) -> None:
        cache = self._passed if passed else self._failed
        with self._cache_lock:
            cache[key] = None
            while len(cache) > CACHE_LIMIT:
                cache.popitem(last=False)


@dataclass(frozen=True)
class Policy:
    """One loaded web config. ``guard(handler)`` decides a request (None: serve it; else
    the status and headers of the refusal); ``peer_allowed(tls_socket)`` checks a client
    certificate's SANs."""

    ssl_context: ssl.SSLContext | None = None
    client_auth_type: str = "NoClientCert"
    allowed_sans: frozenset[str] = frozenset()
    passwords: Passwords = field(default_factory=lambda: Passwords({}))
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    rate_limit: RateLimit | None = None
    watched: tuple[str, ...] = ()  # files whose change means: read the web config again

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    @property
    def users(self) -> Mapping[str, bytes]:
        return self.passwords.users

    def describe(self) -> str:
        parts = [f"TLS ({self.client_auth_type})" if self.tls else "no TLS"]
        count = len(self.users)
        users = f"{count} user" if count == 1 else f"{count} users"
        parts.append(f"basic auth for {users}" if self.users else "no basic auth")
        if self.rate_limit is not None:
            limit = self.rate_limit
            parts.append(f"rate limit {limit.burst} per {limit.interval:g}s")
        return ", ".join(parts)

    def guard(self, handler: BaseHTTPRequestHandler) -> Refusal | None:
        if self.rate_limit is not None and not self.rate_limit.take():
            return self.rate_limit.refusal()
        if not self.users:
            return None
        credentials = basic_credentials(handler.headers.get("Authorization"))
        if credentials is not None and self.passwords.verify(*credentials):
            return None
        return HTTPStatus.UNAUTHORIZED, {"WWW-Authenticate": f'Basic realm="{REALM}"'}

    def peer_allowed(self, connection: ssl.SSLSocket) -> bool:
        """With client_allowed_sans, the client certificate must name one of them (a
        client without one, under VerifyClientCertIfGiven, is refused)."""
        if not self.allowed_sans:
            return True
        certificate = connection.getpeercert() or {}
        names: Any = certificate.get("subjectAltName", ())
        return any(normal_san(str(entry[1])) in self.allowed_sans for entry in names)


def bcrypt_cost(hashed: bytes) -> int:
    match = BCRYPT_HASH.match(hashed.decode("ascii", "replace"))
    return int(match[1]) if match else 10


def normal_san(value: str) -> str:
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def basic_credentials(header: str | None) -> tuple[str, bytes] | None:
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
