"""HTTP client for Pinpointe's GetAutoresponderResults, with retries and pagination.

One ``requests.Session`` per account. Transient failures (connection errors, 429,
502, 503, 504) are retried by urllib3's ``Retry`` with backoff, honouring
``Retry-After``; a ``Retry-After`` longer than RETRY_AFTER_INLINE_MAX ends the poll
instead, so the poller can wait it out without holding a thread in ``sleep``.
Every failure becomes a PollError whose ``reason`` is one of the contract's.

What one answer may cost is bounded: every attempt by ``timeout`` (headers included,
see deadline.py), every poll by ``poll_timeout``, and every page's body as pagebody.py
says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from exporter import __version__
from exporter.config import AccountConfig, Selector
from exporter.config.files import FileProblem
from exporter.config.secret import SecretFileError
from exporter.pinpointe.body import (
    NOT_JSON,
    TOO_DEEP,
    check_containers,
    decode_json,
    read_body,
)
from exporter.pinpointe.cabundle import CaBundle
from exporter.pinpointe.deadline import POLL_TIMEOUT, Guard, GuardedAdapter, guarded
from exporter.pinpointe.envelope import (
    CREDENTIAL_WORDS,
    Page,
    ResponseError,
    error_message,
    parse_body,
)
from exporter.pinpointe.errors import (
    CHECK_API_URL,
    PollError,
    auth_failed,
    capped,
    connection_failed,
    deadline_error,
    describe_body,
    is_timeout,
    quoted,
    retry_later,
)
from exporter.pinpointe.retry import (
    RETRY_AFTER_INLINE_MAX,
    RETRY_STATUSES,
    CountingRetry,
    DeadlineHit,
    RetryAfterTooLong,
    parse_retry_after,
)
from exporter.reasons import Reason

METHOD = "GetAutoresponderResults"
MAX_PAGES = 10_000
# Statuses that mean the URL is not an API that takes this POST at all.
WRONG_URL_STATUSES = frozenset((404, 405, 501))


RecordSink = Callable[[tuple[Any, ...]], None]  # a page's records (see Page)


@dataclass(frozen=True)
class FetchResult:
    pages: int
    warnings: tuple[str, ...]
    complete: bool = True


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
        retry = CountingRetry(
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
        self._ca_bundle: CaBundle | None = None
        if account.tls_insecure_skip_verify:
            self._verify = False
        elif account.ca_file:
            self._ca_bundle = CaBundle(account.ca_file)

    def close(self) -> None:
        self.session.close()
        if self._ca_bundle is not None:
            self._ca_bundle.close()

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
        try:
            token = self.account.usertoken.reveal()
        except SecretFileError as exc:
            raise PollError(Reason.AUTH, str(exc)) from None
        return {
            "username": self.account.username,
            "usertoken": token,
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
                raise deadline_error(self.account, POLL_TIMEOUT, where)
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
        self._load_ca_file()
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
            except RetryAfterTooLong as exc:
                raise retry_later(self.account, exc.status, exc.seconds) from None
            except (DeadlineHit, requests.exceptions.RequestException) as exc:
                if guard.fired is not None:
                    raise deadline_error(self.account, guard.fired, where) from None
                if isinstance(exc, requests.exceptions.RequestException) and not is_timeout(exc):
                    raise connection_failed(self.account, exc) from None
                raise deadline_error(self.account, "timeout", where) from None
            try:
                return self._interpret(response, guard, where)
            finally:
                response.close()

    def _load_ca_file(self) -> None:
        """The ca_file as it is now (see cabundle.py); a FIFO, a device, a directory or a
        large file fails the poll before any request."""
        if self._ca_bundle is None:
            return
        generation = self._ca_bundle.generation
        try:
            self._verify = self._ca_bundle.verify()
        except FileProblem as exc:
            raise PollError(
                Reason.CONNECTION,
                f"ca_file {exc}; no request is sent until it is a CA bundle again",
            ) from None
        if self._ca_bundle.generation != generation:
            # Connections made under the previous bundle (pooled by the verify path, which
            # a new memory file may reuse) must not carry on unchecked.
            for adapter in self.session.adapters.values():
                adapter.close()

    def _interpret(self, response: requests.Response, guard: Guard, where: str) -> Page:
        status = response.status_code
        if 300 <= status < 400:
            raise PollError(
                Reason.HTTP,
                f"{self.account.shown_url} redirects (HTTP {status}) to "
                f"{quoted(response.headers.get('Location', 'nowhere'))}; set api_url to the "
                "final URL",
            )
        raw = read_body(self.account, response, guard, where)
        if status == 429:
            raise retry_later(
                self.account, 429, parse_retry_after(response.headers.get("Retry-After"))
            )
        check_containers(self.account, raw, where)
        body = decode_json(raw)
        if status == 401:
            detail = error_message(body) if isinstance(body, dict) else ""
            raise auth_failed(self.account, detail)
        if status in WRONG_URL_STATUSES:
            raise PollError(
                Reason.HTTP,
                f"{self.account.shown_url} answered HTTP {status} "
                f"({quoted(response.reason or 'no reason')}); {CHECK_API_URL}",
            )
        if not 200 <= status < 300:
            detail = error_message(body) if isinstance(body, dict) else ""
            if CREDENTIAL_WORDS.search(detail):
                raise auth_failed(self.account, detail)
            if detail and status < 500:
                raise PollError(
                    Reason.API_FAILED,
                    f"Pinpointe answered HTTP {status}: {detail}",
                )
            raise PollError(
                Reason.HTTP,
                f"Pinpointe answered HTTP {status} ({quoted(response.reason or 'no reason')})",
                retry_after=capped(
                    self.account, parse_retry_after(response.headers.get("Retry-After"))
                ),
            )
        if body is TOO_DEEP:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"{self.account.shown_url} answered HTTP 200 with JSON nested deeper than it "
                "can be read (about 1000 levels; a Pinpointe answer has a few)",
            )
        if body is NOT_JSON:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"{self.account.shown_url} answered HTTP 200 with a body that is not JSON "
                f"({describe_body(raw)}); {CHECK_API_URL}",
            )
        try:
            return parse_body(body)
        except ResponseError as exc:
            if exc.reason == Reason.AUTH:
                raise auth_failed(self.account, exc.message) from None
            if exc.reason == Reason.API_FAILED:
                raise PollError(
                    Reason.API_FAILED,
                    f"Pinpointe refused the request: {exc.message}; check "
                    "request_type, the API being enabled for the account and the autoresponder "
                    "selection",
                ) from None
            hint = "" if exc.reason == Reason.PAGINATION else f"; {CHECK_API_URL}"
            raise PollError(exc.reason, exc.message + hint) from None
