"""HTTP client for Pinpointe's GetAutoresponderResults, with retries and pagination.

One ``requests.Session`` per account. Transient failures (connection errors, 429,
502, 503, 504) are retried by urllib3's ``Retry`` with backoff, honouring
``Retry-After``; a ``Retry-After`` longer than RETRY_AFTER_INLINE_MAX ends the poll
instead, so the poller can wait it out without holding a thread in ``sleep``.
Every failure becomes a PollError whose ``reason`` is one of the contract's.

What one answer may cost is bounded: every attempt by ``timeout`` (headers included,
see deadline.py), every poll by ``poll_timeout``, every page's decoded bytes by
``page_size`` x ``max_record_size`` (``max_page_size`` at most, and when page_size is 0)
and its JSON objects and lists by the same bound / BYTES_PER_CONTAINER, so that parsing
cannot cost much more than the bytes themselves.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import requests
import urllib3
from urllib3.util.retry import Retry

from exporter import __version__
from exporter.config import AccountConfig, Selector, format_duration
from exporter.deadline import POLL_TIMEOUT, Guard, GuardedAdapter, current, guarded
from exporter.logs import REDACTED
from exporter.parsing import CREDENTIAL_WORDS, Page, ResponseError, error_message, parse_body
from exporter.reasons import Reason
from exporter.sizes import format_size

log = logging.getLogger("exporter.pinpointe")

METHOD = "GetAutoresponderResults"
RETRY_STATUSES = frozenset((429, 502, 503, 504))
RETRY_AFTER_INLINE_MAX = 10.0
# A Retry-After is waited out for at most the larger of the poll interval and this.
RETRY_AFTER_CAP = 3600.0
MAX_PAGES = 10_000
CHECK_API_URL = "check api_url: it should be the apijson.php URL of the host you log in on"
# Statuses that mean the URL is not an API that takes this POST at all.
WRONG_URL_STATUSES = frozenset((404, 405, 501))
# Room for the envelope (status, pagination) beside page_size x max_record_size.
ENVELOPE_BYTES = 64 * 1024
# A page may hold one JSON object or list per this many bytes of its bound: a parsed
# container costs 60-200 bytes, so a page of "{}" cannot cost 30 times its size.
BYTES_PER_CONTAINER = 64


class PollError(Exception):
    """A failed poll. ``message`` says what happened and what to do; never holds the token."""

    def __init__(self, reason: Reason, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


RecordSink = Callable[[tuple[dict[str, Any], ...]], None]


@dataclass(frozen=True)
class FetchResult:
    pages: int
    warnings: tuple[str, ...]
    complete: bool = True


class _CountingRetry(Retry):
    """urllib3 Retry that reports every attempt's outcome and refuses long Retry-After waits."""

    on_attempt: Callable[[str], None] | None = None

    def new(self, **kw: Any) -> _CountingRetry:
        retry: _CountingRetry = super().new(**kw)
        retry.on_attempt = self.on_attempt
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # urllib3 asks this once for every response it receives.
        if self.on_attempt is not None:
            self.on_attempt(str(status_code))
        return super().is_retry(method, status_code, has_retry_after)

    def get_retry_after(self, response: Any) -> float | None:
        # Parsed here rather than by urllib3, which caps it at its own 6 hours and raises on
        # junk: an unparseable Retry-After is ignored, not a failed poll.
        seconds = _parse_retry_after(response.headers.get("Retry-After"))
        if seconds is not None and seconds > RETRY_AFTER_INLINE_MAX:
            raise _RetryAfterTooLong(seconds, int(getattr(response, "status", 0) or 0))
        return seconds

    def sleep(self, response: Any = None) -> None:
        # An inline wait (Retry-After or backoff) that would pass the poll's deadline ends
        # the poll now rather than holding its slot past poll_timeout.
        guard = current()
        if guard is not None and guard.poll_deadline is not None:
            wait = self.get_retry_after(response) if response is not None else None
            if wait is None:
                wait = self.get_backoff_time()
            if time.monotonic() + wait >= guard.poll_deadline:
                guard.expire(POLL_TIMEOUT)
                raise _DeadlineHit()
        super().sleep(response)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> _CountingRetry:
        # Called for every failed attempt; responses were already counted by is_retry.
        if error is not None and self.on_attempt is not None:
            self.on_attempt("error")
        guard = current()
        if guard is not None and guard.fired is not None:
            raise _DeadlineHit()  # no retry once a deadline has cut the attempt
        retry: _CountingRetry = super().increment(method, url, response, error, _pool, _stacktrace)
        return retry


class _RetryAfterTooLong(Exception):
    def __init__(self, seconds: float, status: int) -> None:
        super().__init__(f"Retry-After {seconds:.0f}s")
        self.seconds = seconds
        self.status = status


class _DeadlineHit(Exception):
    """An attempt was cut by its Guard; the Guard says which bound."""


class PinpointeClient:
    """Fetches GetAutoresponderResults pages for one account."""

    def __init__(
        self,
        account: AccountConfig,
        on_request: Callable[[str], None] = lambda code: None,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.account = account
        # The requesttype sent; the poller's request_type probe may switch it.
        self.request_type = account.request_type
        self.max_pages = max_pages
        retry = _CountingRetry(
            total=3,
            connect=3,
            read=1,
            status=3,
            other=0,
            allowed_methods=None,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=0.5,
            backoff_max=RETRY_AFTER_INLINE_MAX,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        retry.on_attempt = on_request
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"pinpointe-exporter/{__version__}",
            }
        )
        self.session.mount("http://", GuardedAdapter(max_retries=retry))
        self.session.mount("https://", GuardedAdapter(max_retries=retry))
        self.poll_deadline: float | None = None
        # Given on every request: a session-level setting would lose to REQUESTS_CA_BUNDLE.
        self._verify: bool | str = True
        if account.tls_insecure_skip_verify:
            self._verify = False
        elif account.ca_file:
            self._verify = account.ca_file

    def close(self) -> None:
        self.session.close()

    def begin_poll(self) -> None:
        """Start the ``poll_timeout`` clock: every request from now on belongs to one poll."""
        self.poll_deadline = time.monotonic() + self.account.poll_timeout

    def request_body(self, grouping: str, selector: Selector | None, cursor: int) -> dict[str, Any]:
        details: dict[str, Any] = {"grouping": grouping}
        if selector is not None and selector.id is not None:
            details["autoresponderid"] = selector.id
        elif selector is not None and selector.name is not None:
            details["autorespondername"] = selector.name
        if self.account.page_size > 0:
            details["pagination"] = {"limit": self.account.page_size, "next": cursor}
        return {
            "username": self.account.username,
            "usertoken": self.account.usertoken.reveal(),
            "requesttype": self.request_type,
            "requestmethod": METHOD,
            "details": details,
        }

    def fetch(
        self,
        grouping: str,
        sink: RecordSink,
        selector: Selector | None = None,
        page_budget: int | None = None,
    ) -> FetchResult:
        """Every record of one grouping (one autoresponder, or all), following pagination.

        Each page's records go to ``sink`` as soon as they arrive, so a large account is
        never held in memory as raw JSON. With ``page_budget``, stops after that many
        pages and returns complete=False if the server still had more.
        """
        page_size = self.account.page_size
        warnings: list[str] = []
        cursor = 0
        pages = 0
        while True:
            where = f"page {pages + 1} of grouping {grouping}"
            if self.poll_deadline is not None and time.monotonic() >= self.poll_deadline:
                raise self._deadline_error(POLL_TIMEOUT, where)
            page = self._request_page(self.request_body(grouping, selector, cursor), where)
            pages += 1
            if page_size > 0 and len(page.records) > page_size:
                raise PollError(
                    Reason.INVALID_RESPONSE,
                    f"{where} held {len(page.records)} records, more than the {page_size} "
                    "asked for (pagination.limit = page_size): the server does not honour "
                    "the limit; set page_size: 0 if it ignores pagination",
                )
            sink(page.records)
            following = page.next_cursor
            if page_size == 0 or following == 0:
                break
            if following is None:
                if len(page.records) >= page_size:
                    warnings.append(
                        f"page {pages} of grouping {grouping} was full ({page_size} records) but "
                        "had no pagination.next; if the account holds more, the server ignores "
                        "pagination: set page_size: 0"
                    )
                break
            if following <= cursor:
                raise PollError(
                    Reason.PAGINATION,
                    f"pagination.next went from {cursor} to {following} for grouping {grouping}: "
                    "the server's pagination does not move forward",
                )
            if len(page.records) < page_size:
                warnings.append(
                    f"page {pages} of grouping {grouping} held {len(page.records)} records, fewer "
                    f"than page_size {page_size}, yet pagination.next was {following}; "
                    "treated it as the last page"
                )
                break
            if page_budget is not None and pages >= page_budget:
                return FetchResult(pages, tuple(warnings), complete=False)
            if pages >= self.max_pages:
                raise PollError(
                    Reason.PAGINATION,
                    f"pagination did not end after {pages} pages for grouping {grouping}; "
                    "raise page_size if the account really holds that many records",
                )
            cursor = following
        return FetchResult(pages, tuple(warnings))

    def _request_page(self, body: dict[str, Any], where: str) -> Page:
        with guarded(self.account.timeout, self.poll_deadline) as guard:
            try:
                response = self.session.post(
                    self.account.api_url,
                    data=json.dumps(body),
                    timeout=self.account.timeout,
                    stream=True,
                    verify=self._verify,
                    allow_redirects=False,
                )
            except _RetryAfterTooLong as exc:
                raise self._retry_later(exc.status, exc.seconds) from None
            except (_DeadlineHit, requests.exceptions.RequestException) as exc:
                if guard.fired is not None:
                    raise self._deadline_error(guard.fired, where) from None
                if isinstance(exc, requests.exceptions.RequestException) and not _is_timeout(exc):
                    raise self._connection_failed(exc) from None
                raise self._deadline_error("timeout", where) from None
            try:
                return self._interpret(response, guard, where)
            finally:
                response.close()

    def _interpret(self, response: requests.Response, guard: Guard, where: str) -> Page:
        status = response.status_code
        if 300 <= status < 400:
            raise PollError(
                Reason.HTTP,
                f"{self.account.api_url} redirects (HTTP {status}) to "
                f"{response.headers.get('Location', 'nowhere')}; set api_url to the final URL",
            )
        raw = self._read_body(response, guard, where)
        if status == 429:
            raise self._retry_later(429, _parse_retry_after(response.headers.get("Retry-After")))
        self._check_containers(raw, where)
        body = _decode_json(raw)
        if status == 401:
            detail = error_message(body) if isinstance(body, dict) else ""
            raise self._auth_failed(detail)
        if status in WRONG_URL_STATUSES:
            raise PollError(
                Reason.HTTP,
                f"{self.account.api_url} answered HTTP {status} "
                f"({response.reason or 'no reason'}); {CHECK_API_URL}",
            )
        if not 200 <= status < 300:
            detail = error_message(body) if isinstance(body, dict) else ""
            if CREDENTIAL_WORDS.search(detail):
                raise self._auth_failed(detail)
            if detail and status < 500:
                raise PollError(
                    Reason.API_FAILED, f"Pinpointe answered HTTP {status}: {self._redact(detail)}"
                )
            raise PollError(
                Reason.HTTP,
                f"Pinpointe answered HTTP {status} ({response.reason or 'no reason'})",
                retry_after=self._capped(_parse_retry_after(response.headers.get("Retry-After"))),
            )
        if body is _INVALID:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"{self.account.api_url} answered HTTP 200 with a body that is not JSON "
                f"({_describe_body(raw)}); {CHECK_API_URL}",
            )
        try:
            return parse_body(body)
        except ResponseError as exc:
            if exc.reason == Reason.AUTH:
                raise self._auth_failed(exc.message) from None
            if exc.reason == Reason.API_FAILED:
                raise PollError(
                    Reason.API_FAILED,
                    f"Pinpointe refused the request: {self._redact(exc.message)}; check "
                    "request_type, the API being enabled for the account and the autoresponder "
                    "selection",
                ) from None
            hint = "" if exc.reason == Reason.PAGINATION else f"; {CHECK_API_URL}"
            raise PollError(exc.reason, self._redact(exc.message) + hint) from None

    def page_bound(self) -> tuple[int, str]:
        """The most decoded bytes one page may take, and the settings that make it so."""
        account = self.account
        if account.page_size > 0:
            relative = ENVELOPE_BYTES + account.page_size * account.max_record_size
            if relative < account.max_page_size:
                return relative, (
                    f"page_size {account.page_size} x max_record_size "
                    f"{format_size(account.max_record_size)}; raise max_record_size"
                )
        return account.max_page_size, (
            f"max_page_size {format_size(account.max_page_size)}; raise max_page_size"
        )

    def _read_body(self, response: requests.Response, guard: Guard, where: str) -> bytes:
        """The whole decoded body, within the page bound and the attempt's deadline."""
        bound, settings = self.page_bound()
        body = bytearray()
        try:
            while chunk := response.raw.read1(1 << 16, decode_content=True):
                body += chunk
                if len(body) > bound:
                    raise PollError(
                        Reason.INVALID_RESPONSE,
                        f"{where} is larger than {format_size(bound)} (the bound from "
                        f"{settings} if the records really are that large)",
                    )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if guard.fired is not None:
                raise self._deadline_error(guard.fired, where, body=True) from None
            if _is_timeout(exc):
                raise self._deadline_error("timeout", where, body=True) from None
            raise PollError(
                Reason.CONNECTION,
                f"the connection to {self.account.api_url} broke while reading the response "
                f"({_root_cause(exc)})",
            ) from None
        if guard.fired is not None:  # the socket was shut down between reads
            raise self._deadline_error(guard.fired, where, body=True)
        return bytes(body)

    def _check_containers(self, raw: bytes, where: str) -> None:
        """Refuse, before parsing, a page of more JSON objects and lists than its bound allows.

        Braces inside strings are counted too: that can only make the count larger.
        """
        bound, settings = self.page_bound()
        most = bound // BYTES_PER_CONTAINER
        if raw.count(b"{") + raw.count(b"[") > most:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"{where} holds more than {most} JSON objects and lists, the most a page "
                f"within {format_size(bound)} may hold (the bound from {settings} if the "
                "records really are that many)",
            )

    def _deadline_error(self, bound: str, where: str, body: bool = False) -> PollError:
        account = self.account
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

    def _connection_failed(self, exc: requests.exceptions.RequestException) -> PollError:
        if isinstance(exc, requests.exceptions.SSLError) and _PLAIN_HTTP.search(_root_cause(exc)):
            return PollError(
                Reason.CONNECTION,
                f"{self.account.api_url} answered in plain HTTP, not HTTPS: use an http:// "
                "api_url if the server really serves plain HTTP, or check the host and port",
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return PollError(
                Reason.CONNECTION,
                f"TLS handshake with {self.account.api_url} failed ({_root_cause(exc)}); "
                "check ca_file",
            )
        return PollError(
            Reason.CONNECTION,
            f"the connection to {self.account.api_url} failed ({_root_cause(exc)}); "
            "check api_url and the network",
        )

    def _auth_failed(self, detail: str) -> PollError:
        said = f" ({self._redact(detail)})" if detail else ""
        return PollError(
            Reason.AUTH,
            f"Pinpointe rejected the credentials for account {self.account.name}{said}: "
            "check username and usertoken, and that the API is enabled under "
            "Account Settings => API + Connectors",
        )

    def _retry_later(self, status: int, retry_after: float | None) -> PollError:
        """A 429 is rate limiting; any other status asking to come back later is ``http``."""
        asked = retry_after
        retry_after = self._capped(retry_after)
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
            f"Pinpointe is rate limiting account {self.account.name}{wait}; "
            "consider a longer poll_interval",
            retry_after=retry_after,
        )

    def _capped(self, retry_after: float | None) -> float | None:
        cap = max(self.account.poll_interval, RETRY_AFTER_CAP)
        if retry_after is None or retry_after <= cap:
            return retry_after
        log.warning(
            "Retry-After capped: waiting the larger of poll_interval and 1h instead",
            extra={
                "fields": {
                    "account": self.account.name,
                    "retry_after_seconds": round(retry_after),
                    "waiting_seconds": round(cap),
                }
            },
        )
        return cap

    def _redact(self, text: str) -> str:
        for form in self.account.usertoken.forms():
            text = text.replace(form, REDACTED)
        return text


_INVALID = object()


def _decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _INVALID


def _describe_body(raw: bytes) -> str:
    if not raw.strip():
        return "empty"
    head = raw.lstrip()[:15].lower()
    if head.startswith((b"<!doctype", b"<html")):
        return "an HTML page"
    if head.startswith((b"{", b"[")):
        return f"truncated or malformed JSON, {len(raw)} bytes"
    return f"{len(raw)} bytes of something else"


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) < 16 else 1e15  # longer than any cap
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


_TIMEOUTS = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, socket.timeout)


def _is_timeout(exc: BaseException) -> bool:
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


def _root_cause(exc: BaseException) -> str:
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
