"""Faults in the records: exact records, duplicates, invalid values, odd and giant names."""

from __future__ import annotations

import json
from typing import Any

from exporter.simulator.faults.call import FaultCall, fault, records_in

DUPLICATE_MARKER = 987_654_321


@fault(records=[])
def records(call: FaultCall) -> None:
    """Answer every request with exactly ``records`` (any JSON values) on one last page."""
    call.send(200, {"status": "SUCCESS", "data": call.params.get("records", [])})


@fault()
def duplicates(call: FaultCall) -> None:
    """Every page after the first starts with the previous page's last record again, with
    a different sendsize (DUPLICATE_MARKER), as a server whose pages overlap would."""
    cursor, limit = call.cursor, call.limit
    if cursor > 0 and limit > 0:
        call.request["details"]["pagination"] = {"next": cursor - 1, "limit": limit}
    status, body = call.answer()
    records = records_in(body)
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


@fault()
def bad_values(call: FaultCall) -> None:
    status, body = call.answer()
    records = records_in(body)
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


@fault()
def odd_names(call: FaultCall) -> None:
    status, body = call.answer()
    for record in records_in(body):
        odd = ODD_NAMES.get(int(record.get("autoresponderid", 0)))
        if odd is not None:
            record["autorespondername"] = odd
    call.send(status, body)


@fault(bytes=10_000_000)
def big_response(call: FaultCall) -> None:
    """Pad every record with a long text field until the body is ``bytes`` long (10 MB)."""
    status, body = call.answer()
    records = records_in(body)
    size = int(call.params.get("bytes", 10_000_000))
    if records:
        each = max(0, size - len(json.dumps(body))) // len(records) + 1
        for record in records:
            record["description"] = "x" * each
    call.send(status, body)
