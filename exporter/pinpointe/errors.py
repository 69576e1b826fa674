"""A failed poll, phrased for the user: its reason, what happened and what to do.

Messages quote what Pinpointe sent (an ``errormessage``, a reason phrase, a
``Location``, a malformed status line in an exception): every PollError's message is
redacted of every registered secret when it is made, before anything stores it, so
the log, the status page and its JSON all get the same clean text. A requests/urllib3
exception is described by its root cause.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import urllib.parse

import requests
import urllib3

from exporter import logs
from exporter.config import AccountConfig, format_duration
from exporter.pinpointe.deadline import POLL_TIMEOUT
from exporter.reasons import Reason

log = logging.getLogger("exporter.pinpointe")

# A Retry-After is waited out for at most the larger of the poll interval and this.
RETRY_AFTER_CAP = 3600.0
CHECK_API_URL = "check api_url: it should be the apijson.php URL of the host you log in on"


class PollError(Exception):
    """A failed poll. ``message`` says what happened and what to do; never holds the token."""

    def __init__(self, reason: Reason, message: str, retry_after: float | None = None) -> None:
        message = logs.redact(message)
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
            f"{account.shown_url} did not finish sending the response within "
            f"{account.timeout:g}s (timeout, for {where}); raise timeout or check the server",
        )
    return PollError(
        Reason.TIMEOUT,
        f"no answer from {account.shown_url} within {account.timeout:g}s (timeout: the "
        f"status line and headers for {where} did not arrive in time); check that the "
        "host is reachable or raise timeout",
    )


def connection_failed(
    account: AccountConfig, exc: requests.exceptions.RequestException
) -> PollError:
    return PollError(Reason.CONNECTION, _connection_problem(account, exc))


def _connection_problem(account: AccountConfig, exc: requests.exceptions.RequestException) -> str:
    """What went wrong with the connection to api_url, and what to check."""
    url, cause = account.shown_url, root_cause(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        if _PLAIN_HTTP.search(cause):
            return (
                f"{url} answered in plain HTTP, not HTTPS: use an http:// api_url if the "
                "server really serves plain HTTP, or check the host and port"
            )
        advice = next((said for words, said in _TLS_ADVICE if words.search(cause)), _TLS_DEFAULT)
        return f"TLS handshake with {url} failed ({cause}); {advice}"
    if _caused_by(exc, urllib3.exceptions.NameResolutionError):
        host = urllib.parse.urlsplit(account.api_url).hostname or "?"
        return (
            f"the host name {host} of {url} does not resolve ({cause}); check the host in "
            "api_url and the DNS resolver of this machine"
        )
    if _caused_by(exc, urllib3.exceptions.NewConnectionError):
        return (
            f"cannot connect to {url} ({cause}); check the host and port in api_url, that "
            "the server is up, and any firewall or proxy on the way"
        )
    if _caused_by(exc, (http.client.HTTPException, ConnectionError)):
        return (
            f"the connection to {url} broke before an answer came ({cause}); the server "
            "closed it or does not speak HTTP there: check the host, port and scheme in "
            "api_url, and any proxy on the way"
        )
    return f"the connection to {url} failed ({cause}); check api_url and the network"


def auth_failed(account: AccountConfig, detail: str) -> PollError:
    said = f" ({detail})" if detail else ""
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


QUOTED_CHARS = 200


def quoted(text: str) -> str:
    """Server text (a reason phrase, a Location) as a message quotes it: cut at
    QUOTED_CHARS."""
    return logs.excerpt(text, QUOTED_CHARS)


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


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it: urllib3's ``reason``, requests' wrapped first
    argument, or Python's ``__cause__``/``__context__``, outermost first."""
    chain: list[BaseException] = []
    current_exc: BaseException | None = exc
    while current_exc is not None and all(current_exc is not seen for seen in chain):
        chain.append(current_exc)
        reason = getattr(current_exc, "reason", None)
        if isinstance(reason, BaseException):
            current_exc = reason
        elif wrapped := [arg for arg in current_exc.args if isinstance(arg, BaseException)]:
            # requests wraps its cause first; urllib3's ProtocolError as (message, cause)
            current_exc = wrapped[0]
        else:
            current_exc = current_exc.__cause__ or current_exc.__context__
    return chain


def _caused_by(
    exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    return any(isinstance(link, kind) for link in _chain(exc))


def is_timeout(exc: BaseException) -> bool:
    """Whether a timeout caused ``exc``: requests reports a read timeout after retries, or
    during the body, as a ConnectionError wrapping urllib3's ReadTimeoutError. A refused
    connection or a name that does not resolve is not one, although urllib3's
    NewConnectionError subclasses ConnectTimeoutError."""
    if _caused_by(exc, urllib3.exceptions.NewConnectionError):
        return False
    return _caused_by(exc, _TIMEOUTS)


def root_cause(exc: BaseException) -> str:
    innermost = _chain(exc)[-1]
    text = _SSL_PREFIX.sub("", str(innermost)) or type(innermost).__name__
    return logs.excerpt(_SSL_PREFIX.sub("", text.split(": ", 1)[-1]), QUOTED_CHARS, "")


# What to check, by OpenSSL's words for why a handshake failed (the first match wins).
_TLS_ADVICE = (
    (
        re.compile(r"hostname mismatch|ip address mismatch", re.I),
        "the server's certificate is not for this host: check the host in api_url",
    ),
    (
        re.compile(r"verify failed|issuer|self.signed|expired|not yet valid|untrusted", re.I),
        "check ca_file (the CA that signed the server's certificate) and the server's "
        "certificate chain",
    ),
    (
        re.compile(r"protocol version|unsupported protocol|no protocols", re.I),
        "the server and this exporter share no TLS version (the exporter needs TLS 1.2 or later)",
    ),
    (
        re.compile(r"certificate required", re.I),
        "the server asks for a client certificate, which the exporter does not send",
    ),
    (
        re.compile(r"eof|reset|closed", re.I),
        "the server closed the connection during the handshake: check that the port in "
        "api_url serves HTTPS",
    ),
)
_TLS_DEFAULT = "check that the port in api_url serves HTTPS, and ca_file"
# OpenSSL's words when a TLS client gets a plain HTTP answer.
_PLAIN_HTTP = re.compile(r"wrong version number|http request|record layer failure", re.I)
# "[SSL: WRONG_VERSION_NUMBER] " or "[SSL] ", before OpenSSL's text.
_SSL_PREFIX = re.compile(r"^\[SSL(?:: [A-Z0-9_]+)?\] ")
