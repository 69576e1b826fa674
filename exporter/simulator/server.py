"""The simulator's HTTP server: the API, the admin endpoints and fault dispatch."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from exporter.simulator.data import SimAccount, send_figures, send_model
from exporter.simulator.handler import Arrival, RequestRecord, handler_for
from exporter.simulator.wire import CREDENTIALS_FAILED, METHOD, failed

log = logging.getLogger("exporter.simulator")


def fault_params(fault: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``fault`` answers with: its defaults, overridden by ``params``.

    Fault injection (faults/) is imported here, on the first fault set: the installed
    package leaves it out (pyproject.toml), so the image's ``--demo`` holds none of the
    hostile answers; a source checkout has them.
    """
    try:
        from exporter.simulator.faults import DISPATCH_PARAMS, FAULT_PARAMS, FAULTS
    except ModuleNotFoundError as exc:
        if exc.name != "exporter.simulator.faults":
            raise
        raise ValueError(
            "fault injection is not installed: it ships with the source tree "
            "(exporter/simulator/faults/), not with the package"
        ) from None
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
    unknown = set(params) - {*DISPATCH_PARAMS, *FAULT_PARAMS[fault]}
    if unknown:
        raise ValueError(f"fault {fault!r} takes no parameter {', '.join(sorted(unknown))}")
    return {**FAULT_PARAMS[fault], **params}


class Simulator:
    """A threaded HTTP server answering like Pinpointe's apijson.php for some accounts."""

    def __init__(
        self,
        accounts: list[SimAccount] | None = None,
        clock: Callable[[], float] | None = None,
        admin: bool = True,
    ) -> None:
        self.accounts = {a.username: a for a in (accounts or [SimAccount()])}
        self.admin = admin  # serve /admin/fault and /admin/stats (off in --demo)
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
        self._in_flight_changed = threading.Condition(self._lock)
        self._hold_until = 0
        self._hold_timeout: float | None = None
        self._hold_generation = 0
        self._server: ThreadingHTTPServer | None = None
        self.scheme = "http"
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> Simulator:
        """Serve on ``host:port`` (0: any free port), over HTTPS with the ``tls`` context."""
        self._closing.clear()
        self._server = ThreadingHTTPServer((host, port), handler_for(self))
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
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
        return f"{self.scheme}://127.0.0.1:{self.port}/apijson.php"

    def stop(self) -> None:
        self._closing.set()
        self.hold_pages_until_in_flight(0)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- control -----------------------------------------------------------------
    def set_fault(self, username: str, fault: str | None, **params: Any) -> None:
        """Make every request of ``username`` answer with ``fault`` (None: answer normally).

        ``params`` tune the fault (see FAULT_PARAMS), e.g. ``seconds`` for latency and
        hang (``math.inf``: until the fault is changed), ``retry_after`` for rate_limited
        and http_503; DISPATCH_PARAMS say which requests any fault answers.
        """
        if fault is None:
            if params:
                raise ValueError("clearing a fault takes no parameters")
        else:
            params = fault_params(fault, params)
        with self._lock:
            self._faults[username] = fault
            self._fault_params[username] = params
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

    def received(self, username: str) -> Arrival:
        """An API request of ``username`` came: count it, and say how to answer it."""
        with self._lock:
            self._requests[username] += 1
            fault = self._faults.get(username)
            params = dict(self._fault_params.get(username, {}))
            sequence = self._fault_requests[username]
            self._fault_requests[username] += 1

        def stopping() -> bool:
            return self._closing.is_set() or self.fault_of(username) != fault

        return Arrival(fault, params, sequence, stopping)

    def log_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

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
            model = send_model(account, index, send)
            record.update(send_figures(model, moment))
            record.update(
                statid=(index + 1) * 10_000 + send,
                starttime=model.start,
                finishtime=model.start + 3_600,
            )
        else:
            totals: Counter[str] = Counter()
            for send in range(account.sends_per_autoresponder):
                totals.update(send_figures(send_model(account, index, send), moment))
            record.update(totals)
        return self._present(account, record)

    def _present(self, account: SimAccount, record: dict[str, Any]) -> dict[str, Any]:
        record.update(account.extra_fields)
        for name, renamed in account.renamed_fields.items():
            if name in record:
                record[renamed] = record.pop(name)
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
            return 400, failed("Invalid request: the body must be a JSON object")
        username = str(request.get("username", ""))
        account = self.accounts.get(username)
        if account is None or request.get("usertoken") != account.token:
            return 401, failed(CREDENTIALS_FAILED)
        method = str(request.get("requestmethod", "")).lower()
        request_type = request.get("requesttype")
        if method in ("authentication", "apitest"):
            return 200, {"status": "SUCCESS", "data": {"userid": "1", "username": username}}
        if method != METHOD:
            return 400, failed(f"Unknown requestmethod {request.get('requestmethod')!r}")
        if request_type not in account.request_types:
            return account.request_type_refusal_status, failed(
                f"Unknown requesttype {request_type!r}"
            )
        details = request.get("details") or {}
        if not isinstance(details, dict):
            return 400, failed("details must be an object")
        indices, grouping = self._select(account, details)
        if grouping not in ("autoresponder", "send"):
            return 400, failed(f"Unknown grouping {grouping!r}")
        with self._lock:
            self._requests_by_grouping[(username, grouping)] += 1
            self.seen.append(
                {"username": username, "requesttype": request_type, "details": details}
            )
        return 200, self._page(account, indices, grouping, details.get("pagination"))

    def peak_in_flight(self, reset: bool = False) -> int:
        """Most page answers that were being generated at the same time (since the reset)."""
        with self._lock:
            peak = self._peak_in_flight
            if reset:
                self._peak_in_flight = self._in_flight
            return peak

    def hold_pages_until_in_flight(self, count: int, timeout: float | None = None) -> None:
        """Hold every page answer until ``count`` are being generated at once (or for
        ``timeout`` seconds), so a client's concurrency shows as its peak however loaded
        the machine is; 0 (or stop()) releases every page held."""
        with self._lock:
            self._hold_until = count
            self._hold_timeout = timeout
            self._hold_generation += 1
            self._in_flight_changed.notify_all()

    def _enter_page(self) -> None:
        with self._in_flight_changed:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            if not self._hold_until:
                return
            arrived = self._hold_generation
            if self._in_flight >= self._hold_until:
                self._hold_generation += 1
                self._in_flight_changed.notify_all()
                return
            self._in_flight_changed.wait_for(
                lambda: self._hold_generation != arrived, self._hold_timeout
            )

    def _page(
        self,
        account: SimAccount,
        indices: range | list[int],
        grouping: str,
        pagination: Any,
    ) -> dict[str, Any]:
        self._enter_page()
        try:
            if account.latency > 0:
                time.sleep(account.latency)
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
            return self._envelope(
                account, records, following if isinstance(pagination, dict) else None
            )
        finally:
            with self._lock:
                self._in_flight -= 1

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
