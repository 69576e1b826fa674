"""Faults of pagination: a next that repeats, goes back, never ends, or is missing;
scripted page sequences."""

from __future__ import annotations

from exporter.simulator.faults.call import FaultCall, fault, with_next


@fault()
def pagination_repeat(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    status, body = call.answer()
    call.send(status, with_next(body, cursor if cursor else limit))


@fault()
def pagination_backwards(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    status, body = call.answer()
    call.send(status, with_next(body, cursor - 1 if cursor else limit))


@fault()
def pagination_endless(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    if limit:
        call.request["details"]["pagination"]["next"] = 0
    status, body = call.answer()
    call.send(status, with_next(body, cursor + limit))


@fault()
def short_pages(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    if limit > 1:
        call.request["details"]["pagination"]["limit"] = limit - 1
    status, body = call.answer()
    call.send(status, with_next(body, cursor + max(1, limit - 1)))


@fault()
def no_pagination(call: FaultCall) -> None:
    status, body = call.answer()
    call.send(status, with_next(body, None))


@fault(pages=[])
def scripted(call: FaultCall) -> None:
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
    call.send(status, with_next(body, following))
