"""A Pinpointe JSON API simulator: GetAutoresponderResults as documented, on real HTTP.

Figures are deterministic from (seed, autoresponder, send, time) and only grow with
time: every send keeps reaching new subscribers at its own rate, and opens, clicks,
bounces and the rest are fixed fractions of its recipients, so unique opens <= opens
<= recipients always holds. Used by the tests, by ``--demo`` and by the benchmarks.

Run alone: ``python -m exporter.simulator --port 8080 --autoresponders 50``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import random
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("exporter.simulator")

EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z: every simulated send starts after it
DAY = 86_400
CREDENTIALS_FAILED = "Unable to verify user credentials"
METHOD = "getautoresponderresults"
_THEMES = (
    "Welcome series",
    "Onboarding drip",
    "Abandoned cart",
    "Re-engagement",
    "Birthday offer",
    "Post-purchase follow-up",
    "Trial ending",
    "Webinar reminders",
)


@dataclass
class SimAccount:
    """One simulated Pinpointe account and how its server answers."""

    username: str = "demo"
    token: str = "demo-token"
    autoresponders: int = 25
    sends_per_autoresponder: int = 3
    seed: int = 1
    numbers_as_strings: bool = True
    envelope: str = "list"  # list | indexed | item | single-item | response
    pagination_in: str = "top"  # top | data | response
    status_word: str = "SUCCESS"
    extra_fields: dict[str, Any] = field(default_factory=dict)
    latency: float = 0.0  # seconds every page answer takes, like a slow API (not a fault)

    def autoresponder_name(self, index: int) -> str:
        theme = _THEMES[index % len(_THEMES)]
        return theme if index < len(_THEMES) else f"{theme} {index // len(_THEMES) + 1}"


@dataclass(frozen=True)
class _SendModel:
    start: int
    base: int
    per_hour: int
    ratios: tuple[float, ...]


# Record field -> index into _SendModel.ratios; all are fractions of recipients.
_RATIO_FIELDS = (
    "emailopens",
    "emailopens_unique",
    "linkclicks",
    "linkclicks_unique",
    "emailforwards",
    "unsubscribecount",
    "bouncecount_soft",
    "bouncecount_hard",
    "bouncecount_unknown",
    "feedbackloopcount",
    "htmlopens",  # served but not mapped by default: shows up as pinpointe_unmapped_field_info
)


def _send_model(account: SimAccount, ar_index: int, send_index: int) -> _SendModel:
    return _cached_send_model(account.seed, account.sends_per_autoresponder, ar_index, send_index)


# A send's model depends only on these four numbers; building it is most of the cost of a
# record, and the benchmarks ask for the same hundreds of thousands of records every poll.
@functools.lru_cache(maxsize=1 << 19)
def _cached_send_model(
    seed: int, sends_per_autoresponder: int, ar_index: int, send_index: int
) -> _SendModel:
    rng = random.Random(f"{seed}:{ar_index}:{send_index}")
    opens = rng.uniform(0.15, 0.6)
    unique_opens = opens * rng.uniform(0.55, 0.95)
    clicks = opens * rng.uniform(0.05, 0.35)
    unique_clicks = clicks * rng.uniform(0.6, 0.95)
    ratios = (
        opens,
        unique_opens,
        clicks,
        unique_clicks,
        rng.uniform(0.0, 0.01),
        rng.uniform(0.001, 0.012),
        rng.uniform(0.0, 0.03),
        rng.uniform(0.0, 0.01),
        rng.uniform(0.0, 0.004),
        rng.uniform(0.0, 0.002),
    )
    stopped = rng.random() < 0.05
    html_opens = opens * rng.uniform(0.7, 0.9)
    weeks_before_epoch = sends_per_autoresponder - send_index
    return _SendModel(
        start=EPOCH - weeks_before_epoch * 7 * DAY + (ar_index % 97) * 3_600,
        base=rng.randint(50, 4_000),
        per_hour=0 if stopped else rng.randint(5, 300),
        ratios=(*ratios, html_opens),
    )


def _send_figures(model: _SendModel, now: float) -> dict[str, int]:
    elapsed = max(0.0, now - model.start)
    recipients = model.base + int(model.per_hour * elapsed // 3_600)
    figures = {"sendsize": recipients}
    for name, ratio in zip(_RATIO_FIELDS, model.ratios, strict=True):
        figures[name] = int(recipients * ratio)
    return figures


class Simulator:
    """A threaded HTTP server answering like Pinpointe's apijson.php for some accounts."""

    def __init__(
        self, accounts: list[SimAccount] | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self.accounts = {a.username: a for a in (accounts or [SimAccount()])}
        self.clock = clock or time.time
        self._faults: dict[str, str | None] = {}
        self._fault_params: dict[str, dict[str, Any]] = {}
        self._fault_requests: Counter[str] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=100_000)
        self._closing = threading.Event()
        self._requests: Counter[str] = Counter()
        self._requests_by_grouping: Counter[tuple[str, str]] = Counter()
        self.seen: deque[dict[str, Any]] = deque(maxlen=10_000)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._peak_in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        self._closing.clear()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="simulator", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "simulator not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/apijson.php"

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- control -----------------------------------------------------------------
    def set_fault(self, username: str, fault: str | None, **params: Any) -> None:
        """Make every request of ``username`` answer with ``fault`` (None: answer normally).

        ``params`` tune the fault (see FAULT_PARAMS), e.g. ``seconds`` for latency and
        hang, ``retry_after`` for rate_limited and http_503; ``later_pages=True``
        applies any fault only to requests for a page after the first.
        """
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
        unknown = set(params) - {"later_pages", *FAULT_PARAMS.get(fault or "", {})}
        if unknown:
            raise ValueError(f"fault {fault!r} takes no parameter {', '.join(sorted(unknown))}")
        with self._lock:
            self._faults[username] = fault
            self._fault_params[username] = dict(params)
            self._fault_requests[username] = 0

    def fault_of(self, username: str) -> str | None:
        with self._lock:
            return self._faults.get(username)

    def request_log(self, username: str | None = None) -> list[RequestRecord]:
        """Every API request received (newest 100,000), with when it came and was answered."""
        with self._lock:
            return [r for r in self._log if username in (None, r.username)]

    def request_count(self, username: str | None = None, grouping: str | None = None) -> int:
        with self._lock:
            if grouping is not None:
                return sum(
                    n
                    for (user, g), n in self._requests_by_grouping.items()
                    if g == grouping and username in (None, user)
                )
            if username is None:
                return sum(self._requests.values())
            return self._requests[username]

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()
            self._requests_by_grouping.clear()
            self.seen.clear()
            self._log.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self._requests), "total": sum(self._requests.values())}

    # -- the data ----------------------------------------------------------------
    def records(
        self, username: str, grouping: str = "autoresponder", now: float | None = None
    ) -> list[dict[str, Any]]:
        """Every record the account holds for a grouping, as the API would serve it."""
        account = self.accounts[username]
        moment = self.clock() if now is None else now
        per_ar = account.sends_per_autoresponder if grouping == "send" else 1
        return [
            self._record(account, position, grouping, moment, range(account.autoresponders))
            for position in range(account.autoresponders * per_ar)
        ]

    def _record(
        self,
        account: SimAccount,
        position: int,
        grouping: str,
        moment: float,
        indices: range | list[int],
    ) -> dict[str, Any]:
        """The record at ``position`` of the selected autoresponders' records."""
        per_ar = account.sends_per_autoresponder if grouping == "send" else 1
        index = indices[position // per_ar]
        record: dict[str, Any] = {
            "autoresponderid": index + 1,
            "autorespondername": account.autoresponder_name(index),
        }
        if grouping == "send":
            send = position % per_ar
            model = _send_model(account, index, send)
            record.update(_send_figures(model, moment))
            record.update(
                statid=(index + 1) * 10_000 + send,
                starttime=model.start,
                finishtime=model.start + 3_600,
            )
        else:
            totals: Counter[str] = Counter()
            for send in range(account.sends_per_autoresponder):
                totals.update(_send_figures(_send_model(account, index, send), moment))
            record.update(totals)
        return self._present(account, record)

    def _present(self, account: SimAccount, record: dict[str, Any]) -> dict[str, Any]:
        record.update(account.extra_fields)
        if account.numbers_as_strings:
            return {k: str(v) if isinstance(v, int) else v for k, v in record.items()}
        return record

    def _select(
        self, account: SimAccount, details: dict[str, Any]
    ) -> tuple[range | list[int], str]:
        grouping = str(details.get("grouping") or "autoresponder").lower()
        if "autoresponderid" in details:
            try:
                wanted = int(details["autoresponderid"])
            except (TypeError, ValueError):
                return [], grouping
            return ([wanted - 1] if 1 <= wanted <= account.autoresponders else []), grouping
        if "autorespondername" in details:
            name = str(details["autorespondername"])
            return [
                i for i in range(account.autoresponders) if account.autoresponder_name(i) == name
            ], grouping
        return range(account.autoresponders), grouping

    # -- the API -----------------------------------------------------------------
    def answer(self, request: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one decoded request body."""
        if not isinstance(request, dict):
            return 400, _failed("Invalid request: the body must be a JSON object")
        username = str(request.get("username", ""))
        account = self.accounts.get(username)
        if account is None or request.get("usertoken") != account.token:
            return 401, _failed(CREDENTIALS_FAILED)
        method = str(request.get("requestmethod", "")).lower()
        request_type = request.get("requesttype")
        if method in ("authentication", "apitest"):
            return 200, {"status": "SUCCESS", "data": {"userid": "1", "username": username}}
        if method != METHOD:
            return 400, _failed(f"Unknown requestmethod {request.get('requestmethod')!r}")
        if request_type not in ("Stats", "Autoresponders"):
            return 400, _failed(f"Unknown requesttype {request_type!r}")
        details = request.get("details") or {}
        if not isinstance(details, dict):
            return 400, _failed("details must be an object")
        indices, grouping = self._select(account, details)
        if grouping not in ("autoresponder", "send"):
            return 400, _failed(f"Unknown grouping {grouping!r}")
        with self._lock:
            self._requests_by_grouping[(username, grouping)] += 1
            self.seen.append(
                {"username": username, "requesttype": request_type, "details": details}
            )
        return 200, self._page(account, indices, grouping, details.get("pagination"))

    def _page(
        self,
        account: SimAccount,
        indices: range | list[int],
        grouping: str,
        pagination: Any,
    ) -> dict[str, Any]:
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            if account.latency > 0:
                time.sleep(account.latency)
            return self._page_now(account, indices, grouping, pagination)
        finally:
            with self._lock:
                self._in_flight -= 1

    def peak_in_flight(self, reset: bool = False) -> int:
        """Most page answers that were being generated at the same time (since the reset)."""
        with self._lock:
            peak = self._peak_in_flight
            if reset:
                self._peak_in_flight = self._in_flight
            return peak

    def _page_now(
        self,
        account: SimAccount,
        indices: range | list[int],
        grouping: str,
        pagination: Any,
    ) -> dict[str, Any]:
        moment = self.clock()
        per_ar = account.sends_per_autoresponder if grouping == "send" else 1
        total = len(indices) * per_ar
        start, limit = 0, total
        if isinstance(pagination, dict):
            start = max(0, int(pagination.get("next") or 0))
            limit = max(1, int(pagination.get("limit") or total or 1))
        end = min(total, start + limit)
        records = [
            self._record(account, position, grouping, moment, indices)
            for position in range(start, end)
        ]
        following = end if end < total else 0
        return self._envelope(account, records, following if isinstance(pagination, dict) else None)

    def _envelope(
        self, account: SimAccount, records: list[dict[str, Any]], following: int | None
    ) -> dict[str, Any]:
        data: Any = records
        if account.envelope == "indexed":
            data = {str(i): r for i, r in enumerate(records)}
        elif account.envelope == "item":
            data = {"item": records}
        elif account.envelope == "single-item":
            data = {"item": records[0]} if len(records) == 1 else {"item": records}
        body: dict[str, Any] = {"status": account.status_word, "data": data}
        section = None if following is None else {"next": following}
        if section is not None and account.pagination_in == "data":
            body["data"] = {"item": records, "pagination": section}
        elif section is not None:
            body["pagination"] = section
        if account.envelope == "response" or account.pagination_in == "response":
            body = {"response": body}
        return body


def _failed(message: str) -> dict[str, Any]:
    return {"status": "FAILED", "errormessage": message}


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the simulator saw it (monotonic clock of the simulator process)."""

    username: str
    received: float
    answered: float | None  # when the status line went out; None if no response was sent
    status: int | None
    cursor: int


@dataclass
class FaultCall:
    """What a fault function gets: the raw request, the normal answer and its parameters."""

    handler: BaseHTTPRequestHandler
    request: Any
    respond: Callable[[Any], tuple[int, dict[str, Any]]]  # the normal answer to a request
    params: dict[str, Any]
    sequence: int  # 0 for the first request since the fault was set, then 1, 2, ...
    stopping: Callable[[], bool]

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The normal (status, body) for this request, as it is now."""
        return self.respond(self.request)

    def answer_for(self, details: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The normal answer to this request with other ``details``."""
        return self.respond({**self.request, "details": details})

    @property
    def cursor(self) -> int:
        return _cursor(self.request)[0]

    @property
    def limit(self) -> int:
        return _cursor(self.request)[1]

    def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        handler_send(self.handler, status, body, headers)


def _cursor(request: Any) -> tuple[int, int]:
    details = request.get("details") if isinstance(request, dict) else None
    pagination = details.get("pagination") if isinstance(details, dict) else None
    if not isinstance(pagination, dict):
        return 0, 0
    try:
        return int(pagination.get("next") or 0), int(pagination.get("limit") or 0)
    except (TypeError, ValueError):
        return 0, 0


def _with_next(body: dict[str, Any], following: int | None) -> dict[str, Any]:
    holder = body.get("response", body)
    if following is None:
        holder.pop("pagination", None)
    else:
        holder["pagination"] = {"next": following}
    return body


def _records_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The record dicts of a SUCCESS body, whatever the envelope (to distort them in place)."""
    holder = body.get("response", body)
    data = holder.get("data") if isinstance(holder, dict) else None
    if isinstance(data, dict) and "item" in data:
        data = data["item"]
    if isinstance(data, dict):
        data = list(data.values()) if all(isinstance(v, dict) for v in data.values()) else [data]
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def _wait(call: FaultCall, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not call.stopping():
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


# -- faults: transport ---------------------------------------------------------------
def _fault_latency(call: FaultCall) -> None:
    _wait(call, float(call.params.get("seconds", 1.0)))
    call.send(*call.answer())


def _fault_hang(call: FaultCall) -> None:
    """Read the request, then say nothing until ``seconds`` pass; close without a response."""
    _wait(call, float(call.params.get("seconds", 30.0)))
    call.handler.close_connection = True


def _fault_reset(call: FaultCall) -> None:
    """Abort the connection with a TCP RST instead of answering."""
    sock = call.handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    call.handler.close_connection = True
    sock.close()


def _fault_cut_connection(call: FaultCall) -> None:
    """Announce the full body, send half of it, close the connection."""
    payload = json.dumps(call.answer()[1]).encode()
    handler = call.handler
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload[: len(payload) // 2])
    handler.close_connection = True


# -- faults: HTTP status -------------------------------------------------------------
_ERROR_PAGE = b"<!DOCTYPE html><html><body><h1>%d %s</h1></body></html>"


def _status_page(status: int) -> bytes:
    phrase = {500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable"}
    return _ERROR_PAGE % (status, phrase.get(status, b"Error"))


def _fault_http_500(call: FaultCall) -> None:
    call.send(500, _status_page(500), {"Content-Type": "text/html"})


def _fault_http_502(call: FaultCall) -> None:
    call.send(502, _status_page(502), {"Content-Type": "text/html"})


def _fault_http_503(call: FaultCall) -> None:
    headers = {"Content-Type": "text/html"}
    if call.params.get("retry_after") is not None:
        headers["Retry-After"] = str(call.params["retry_after"])
    call.send(503, _status_page(503), headers)


def _fault_rate_limited(call: FaultCall) -> None:
    body = _failed("Too many requests; slow down")
    call.send(429, body, {"Retry-After": str(call.params.get("retry_after", 2))})


# -- faults: FAILED bodies -----------------------------------------------------------
def _fault_auth(call: FaultCall) -> None:
    call.send(401, _failed(CREDENTIALS_FAILED))


def _fault_auth_200(call: FaultCall) -> None:
    call.send(200, _failed(CREDENTIALS_FAILED))


def _fault_failed_200(call: FaultCall) -> None:
    call.send(200, _failed(str(call.params.get("message", "Autoresponder statistics unavailable"))))


def _fault_errormessage_list(call: FaultCall) -> None:
    messages = ["Autoresponder statistics unavailable", "Please try again later"]
    call.send(200, {"status": "FAILED", "errormessage": messages})


def _fault_echo_token(call: FaultCall) -> None:
    """A 400 FAILED that quotes the whole request back, usertoken included."""
    call.send(400, _failed(f"Invalid request: {json.dumps(call.request)}"))


# -- faults: broken bodies -----------------------------------------------------------
def _fault_malformed_json(call: FaultCall) -> None:
    call.send(200, b'{"status": "SUCCESS", "data": [{"autoresponderid": "1",, }')


def _fault_html_page(call: FaultCall) -> None:
    page = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body>"
    call.send(200, page, {"Content-Type": "text/html; charset=utf-8"})


def _fault_truncated(call: FaultCall) -> None:
    """A complete HTTP response whose JSON body stops half way."""
    payload = json.dumps(call.answer()[1]).encode()
    call.send(200, payload[: len(payload) // 2])


def _fault_fail_later_pages(call: FaultCall) -> None:
    if call.cursor > 0:
        call.send(500, b"<html><body>Internal Server Error</body></html>")
    else:
        call.send(*call.answer())


# -- faults: pagination --------------------------------------------------------------
def _fault_pagination_repeat(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    status, body = call.answer()
    call.send(status, _with_next(body, cursor if cursor else limit))


def _fault_pagination_backwards(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    status, body = call.answer()
    call.send(status, _with_next(body, cursor - 1 if cursor else limit))


def _fault_pagination_endless(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    if limit:
        call.request["details"]["pagination"]["next"] = 0
    status, body = call.answer()
    call.send(status, _with_next(body, cursor + limit))


def _fault_short_pages(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    if limit > 1:
        call.request["details"]["pagination"]["limit"] = limit - 1
    status, body = call.answer()
    call.send(status, _with_next(body, cursor + max(1, limit - 1)))


def _fault_no_pagination(call: FaultCall) -> None:
    status, body = call.answer()
    call.send(status, _with_next(body, None))


def _fault_scripted(call: FaultCall) -> None:
    """Answer the n-th request since the fault was set with ``pages[n] = [records, next]``
    (``next`` None leaves the pagination section out); later requests get 0 records."""
    pages = call.params.get("pages") or []
    count, following = pages[call.sequence] if call.sequence < len(pages) else (0, 0)
    details = call.request.get("details") if isinstance(call.request, dict) else None
    if isinstance(details, dict):
        details["pagination"] = {"next": 0, "limit": max(1, int(count))}
    status, body = call.answer()
    if not count:
        body.get("response", body)["data"] = []
    call.send(status, _with_next(body, following))


# -- faults: odd records -------------------------------------------------------------
DUPLICATE_MARKER = 987_654_321


def _fault_duplicates(call: FaultCall) -> None:
    """Every page after the first starts with the previous page's last record again, with
    a different sendsize (DUPLICATE_MARKER), as a server whose pages overlap would."""
    cursor, limit = call.cursor, call.limit
    if cursor > 0 and limit > 0:
        call.request["details"]["pagination"] = {"next": cursor - 1, "limit": limit + 1}
    status, body = call.answer()
    records = _records_in(body)
    if cursor > 0 and limit > 0 and records:
        records[0]["sendsize"] = str(DUPLICATE_MARKER)
    call.send(status, body)


# Field -> the bad value bad_values puts in it, on the record at that position (0-based).
BAD_VALUES: tuple[tuple[int, str, Any], ...] = (
    (0, "emailopens", None),  # missing: the field is removed
    (1, "linkclicks", -5),  # negative number
    (2, "emailforwards", "n/a"),  # not a number
    (3, "unsubscribecount", "12.5"),  # fractional: accepted
    (4, "sendsize", "1e20"),  # huge: accepted
    (5, "bouncecount_hard", "NaN"),
    (6, "bouncecount_soft", "-3"),  # negative, as a string
    (7, "feedbackloopcount", True),  # a boolean is not a number
    (8, "emailopens_unique", "Infinity"),
    (9, "linkclicks_unique", {"value": 3}),
)


def _fault_bad_values(call: FaultCall) -> None:
    status, body = call.answer()
    records = _records_in(body)
    for position, name, value in BAD_VALUES:
        index = position - call.cursor
        if 0 <= index < len(records):
            if value is None:
                records[index].pop(name, None)
            else:
                records[index][name] = value
    call.send(status, body)


# Autoresponder id -> the name odd_names serves for it.
ODD_NAMES = {
    1: 'Say "hello"',
    2: "back\\slash \\n not a newline",
    3: "two\nlines",
    4: "party 🎉 émoji ✉️",
    5: '\\"\n🎉"\\',
}


def _fault_odd_names(call: FaultCall) -> None:
    status, body = call.answer()
    for record in _records_in(body):
        odd = ODD_NAMES.get(int(record.get("autoresponderid", 0)))
        if odd is not None:
            record["autorespondername"] = odd
    call.send(status, body)


def _fault_big_response(call: FaultCall) -> None:
    """Pad every record with a long text field until the body is ``bytes`` long (10 MB)."""
    status, body = call.answer()
    records = _records_in(body)
    size = int(call.params.get("bytes", 10_000_000))
    if records:
        each = max(0, size - len(json.dumps(body))) // len(records) + 1
        for record in records:
            record["description"] = "x" * each
    call.send(status, body)


# Fault name -> a function answering the request its own way. ``later_pages=True``
# (any fault) answers the first page of every chain normally.
Fault = Callable[[FaultCall], None]
FAULTS: dict[str, Fault] = {
    "latency": _fault_latency,
    "hang": _fault_hang,
    "reset": _fault_reset,
    "cut_connection": _fault_cut_connection,
    "http_500": _fault_http_500,
    "http_502": _fault_http_502,
    "http_503": _fault_http_503,
    "rate_limited": _fault_rate_limited,
    "auth": _fault_auth,
    "auth_200": _fault_auth_200,
    "failed_200": _fault_failed_200,
    "errormessage_list": _fault_errormessage_list,
    "echo_token": _fault_echo_token,
    "malformed_json": _fault_malformed_json,
    "html_page": _fault_html_page,
    "truncated": _fault_truncated,
    "fail_later_pages": _fault_fail_later_pages,
    "pagination_repeat": _fault_pagination_repeat,
    "pagination_backwards": _fault_pagination_backwards,
    "pagination_endless": _fault_pagination_endless,
    "short_pages": _fault_short_pages,
    "no_pagination": _fault_no_pagination,
    "scripted": _fault_scripted,
    "duplicates": _fault_duplicates,
    "bad_values": _fault_bad_values,
    "odd_names": _fault_odd_names,
    "big_response": _fault_big_response,
}
# Fault name -> its parameters and their defaults.
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "latency": {"seconds": 1.0},
    "hang": {"seconds": 30.0},
    "http_503": {"retry_after": None},
    "rate_limited": {"retry_after": 2},
    "failed_200": {"message": "Autoresponder statistics unavailable"},
    "scripted": {"pages": []},
    "big_response": {"bytes": 10_000_000},
}


def handler_send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    merged = {"Content-Type": "application/json", **(headers or {})}
    handler.send_response(status)
    for name, value in merged.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def _handler_for(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "pinpointe-simulator"
        disable_nagle_algorithm = True
        pending: tuple[str, float, int] | None = None  # an API request not yet logged

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format % args)

        def send_response(self, code: int, message: str | None = None) -> None:
            # Logged before the answer leaves, so the log is complete once a client has it.
            self._log_request(time.monotonic(), code)
            super().send_response(code, message)

        def _log_request(self, answered: float | None, status: int | None) -> None:
            if self.pending is not None:
                username, received, cursor = self.pending
                self.pending = None
                with sim._lock:
                    sim._log.append(RequestRecord(username, received, answered, status, cursor))

        def _json_body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw)

        def do_GET(self) -> None:
            if self.path == "/admin/stats":
                handler_send(self, 200, sim.stats())
            else:
                handler_send(self, 404, {"error": "not found"})

        def do_POST(self) -> None:
            received = time.monotonic()
            try:
                body = self._json_body()
            except (ValueError, UnicodeDecodeError):
                handler_send(self, 400, _failed("Invalid request: malformed JSON"))
                return
            if self.path == "/admin/fault":
                try:
                    params = body.get("params") or {}
                    if not isinstance(params, dict):
                        raise TypeError("params must be an object")
                    sim.set_fault(str(body["username"]), body.get("fault"), **params)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    handler_send(self, 400, {"error": str(exc)})
                    return
                handler_send(self, 200, {"ok": True})
                return
            if self.path.split("?")[0] != "/apijson.php":
                handler_send(self, 404, {"error": "not found"})
                return
            username = str(body.get("username", "")) if isinstance(body, dict) else ""
            cursor = _cursor(body)[0]
            self.pending = (username, received, cursor)
            with sim._lock:
                sim._requests[username] += 1
                fault = sim._faults.get(username)
                params = sim._fault_params.get(username, {})
                sequence = sim._fault_requests[username]
                sim._fault_requests[username] += 1
            try:
                if fault is None or (params.get("later_pages") and cursor == 0):
                    handler_send(self, *sim.answer(body))
                    return
                call = FaultCall(
                    self,
                    body,
                    sim.answer,
                    {**FAULT_PARAMS.get(fault, {}), **params},
                    sequence,
                    lambda: sim._closing.is_set() or sim.fault_of(username) != fault,
                )
                FAULTS[fault](call)
            finally:
                self._log_request(None, None)  # no answer was sent (hang, reset)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator", description="Pinpointe API simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--autoresponders", type=int, default=25)
    parser.add_argument("--sends-per-autoresponder", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--username", default="demo")
    parser.add_argument("--token", default="demo-token")
    args = parser.parse_args(argv)
    if not 1 <= args.autoresponders <= 10_000_000 or not 1 <= args.sends_per_autoresponder < 10_000:
        parser.error("--autoresponders must be >= 1 and --sends-per-autoresponder 1..9999")
    account = SimAccount(
        username=args.username,
        token=args.token,
        autoresponders=args.autoresponders,
        sends_per_autoresponder=args.sends_per_autoresponder,
        seed=args.seed,
    )
    sim = Simulator([account]).start(args.host, args.port)
    print(f"Pinpointe simulator on http://{args.host}:{sim.port}/apijson.php", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
