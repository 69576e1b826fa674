"""A failed poll, phrased for the user: its reason, what happened and what to do.

The messages never hold the usertoken (``redact``); a requests/urllib3 exception is
described by its root cause.
"""

from __future__ import annotations

import logging
import re
import socket

import requests
import urllib3

from exporter.config import AccountConfig, format_duration
from exporter.deadline import POLL_TIMEOUT
from exporter.logs import redact_secrets
from exporter.reasons import Reason

log = logging.getLogger("exporter.pinpointe")

# A Retry-After is waited out for at most the larger of the poll interval and this.
RETRY_AFTER_CAP = 3600.0
CHECK_API_URL = "check api_url: it should be the apijson.php URL of the host you log in on"


class PollError(Exception):
    """A failed poll. ``message`` says what happened and what to do; never holds the token."""

    def __init__(self, reason: Reason, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def deadline_error(account: AccountConfig, bound: str, where: str, body: bool = False) -> PollError:
    if bound == POLL_TIMEOUT:
        return PollError(
            Reason.TIMEOUT,
            f"the poll of account {account.name} did not finish within poll_timeout "
            f"({format_duration(account.poll_timeout)}); it stopped at {where}; raise "
            "poll_timeout if the account really needs longer",
        )
    if body:
        return PollError(
            Reason.TIMEOUT,
            f"{account.api_url} did not finish sending the response within "
            f"{account.timeout:g}s (timeout, for {where}); raise timeout or check the server",
        )
    return PollError(
        Reason.TIMEOUT,
        f"no answer from {account.api_url} within {account.timeout:g}s (timeout: the "
        f"status line and headers for {where} did not arrive in time); check that the "
        "host is reachable or raise timeout",
    )


def connection_failed(
    account: AccountConfig, exc: requests.exceptions.RequestException
) -> PollError:
    if isinstance(exc, requests.exceptions.SSLError) and _PLAIN_HTTP.search(root_cause(exc)):
        return PollError(
            Reason.CONNECTION,
            f"{account.api_url} answered in plain HTTP, not HTTPS: use an http:// "
            "api_url if the server really serves plain HTTP, or check the host and port",
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return PollError(
            Reason.CONNECTION,
            f"TLS handshake with {account.api_url} failed ({root_cause(exc)}); check ca_file",
        )
    return PollError(
        Reason.CONNECTION,
        f"the connection to {account.api_url} failed ({root_cause(exc)}); "
        "check api_url and the network",
    )


def auth_failed(account: AccountConfig, detail: str) -> PollError:
    said = f" ({redact(account, detail)})" if detail else ""
    return PollError(
        Reason.AUTH,
        f"Pinpointe rejected the credentials for account {account.name}{said}: "
        "check username and usertoken, and that the API is enabled under "
        "Account Settings => API + Connectors",
    )


def retry_later(account: AccountConfig, status: int, retry_after: float | None) -> PollError:
    """A 429 is rate limiting; any other status asking to come back later is ``http``."""
    asked = retry_after
    retry_after = capped(account, retry_after)
    wait = f"; waiting {retry_after:.0f}s as asked by Retry-After" if retry_after else ""
    if asked != retry_after:
        wait = f"; waiting {retry_after:.0f}s (Retry-After asked for {asked:.0f}s; capped)"
    if status != 429:
        return PollError(
            Reason.HTTP,
            f"Pinpointe answered HTTP {status}{wait}",
            retry_after=retry_after,
        )
    return PollError(
        Reason.RATE_LIMITED,
        f"Pinpointe is rate limiting account {account.name}{wait}; consider a longer poll_interval",
        retry_after=retry_after,
    )


def capped(account: AccountConfig, retry_after: float | None) -> float | None:
    cap = max(account.poll_interval, RETRY_AFTER_CAP)
    if retry_after is None or retry_after <= cap:
        return retry_after
    log.warning(
        "Retry-After capped: waiting the larger of poll_interval and 1h instead",
        extra={
            "fields": {
                "account": account.name,
                "retry_after_seconds": round(retry_after),
                "waiting_seconds": round(cap),
            }
        },
    )
    return cap


def redact(account: AccountConfig, text: str) -> str:
    return redact_secrets(text, account.usertoken.forms())


def describe_body(raw: bytes) -> str:
    if not raw.strip():
        return "empty"
    head = raw.lstrip()[:15].lower()
    if head.startswith((b"<!doctype", b"<html")):
        return "an HTML page"
    if head.startswith((b"{", b"[")):
        return f"truncated or malformed JSON, {len(raw)} bytes"
    return f"{len(raw)} bytes of something else"


_TIMEOUTS = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, socket.timeout)


def is_timeout(exc: BaseException) -> bool:
    """Whether a timeout caused ``exc``: requests reports a read timeout after retries, or
    during the body, as a ConnectionError wrapping urllib3's ReadTimeoutError."""
    seen: set[int] = set()
    current_exc: BaseException | None = exc
    while current_exc is not None and id(current_exc) not in seen:
        if isinstance(current_exc, _TIMEOUTS):
            return True
        seen.add(id(current_exc))
        reason = getattr(current_exc, "reason", None)
        if isinstance(reason, BaseException):
            current_exc = reason
        elif current_exc.args and isinstance(current_exc.args[0], BaseException):
            current_exc = current_exc.args[0]
        else:
            current_exc = current_exc.__cause__ or current_exc.__context__
    return False


def root_cause(exc: BaseException) -> str:
    while True:
        inner = exc.__cause__ or exc.__context__
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException) and reason is not exc:
            exc = reason
        elif exc.args and isinstance(exc.args[0], BaseException) and exc.args[0] is not exc:
            exc = exc.args[0]
        elif inner is not None:
            exc = inner
        else:
            break
    text = _SSL_PREFIX.sub("", str(exc)) or type(exc).__name__
    return _SSL_PREFIX.sub("", text.split(": ", 1)[-1])[:200]


# OpenSSL's words when a TLS client gets a plain HTTP answer.
_PLAIN_HTTP = re.compile(r"wrong version number|http request|record layer failure", re.I)
# "[SSL: WRONG_VERSION_NUMBER] " or "[SSL] ", before OpenSSL's text.
_SSL_PREFIX = re.compile(r"^\[SSL(?:: [A-Z0-9_]+)?\] ")
