"""Pinpointe record fields: which API field feeds which metric, and value validation.

Field names are matched case-insensitively. Values arrive as ints, floats or numeric
strings; anything else (and anything negative or not finite) is skipped and counted,
never exported as 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Metric key -> API fields that feed it, in order of preference.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "recipients": ("sendsize", "sentto", "recipients"),
    "opens": ("emailopens",),
    "unique_opens": ("uniqueopens", "emailopens_unique"),
    "clicks": ("linkclicks",),
    "unique_clicks": ("uniqueclicks", "linkclicks_unique"),
    "forwards": ("emailforwards",),
    "unsubscribes": ("unsubscribecount",),
    "bounces_soft": ("bouncecount_soft",),
    "bounces_hard": ("bouncecount_hard",),
    "bounces_unknown": ("bouncecount_unknown",),
    "complaints": ("feedbackloopcount",),
}
METRIC_KEYS: tuple[str, ...] = tuple(DEFAULT_FIELDS)

ID_FIELDS = ("autoresponderid", "id")
NAME_FIELDS = ("autorespondername", "name")
SEND_ID_FIELDS = ("statid", "stat_id", "sendid")
START_FIELDS = ("starttime",)
# Known fields that are not engagement figures: never reported as unmapped.
NON_METRIC_FIELDS = frozenset(
    (*ID_FIELDS, *NAME_FIELDS, *SEND_ID_FIELDS, *START_FIELDS, "finishtime", "listid", "userid")
)

_NUMBER = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")


def parse_number(value: Any) -> float | None:
    """A finite number from an int, float or numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
            number = float(value)
        else:
            return None
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def clean_label(value: str) -> str:
    """Label values must be valid UTF-8; JSON may carry lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return clean_label(value.strip())
    return None


@dataclass(frozen=True, slots=True)
class Record:
    """One normalised Pinpointe result: an autoresponder, or one send of it."""

    autoresponder_id: str
    autoresponder_name: str
    values: tuple[tuple[str, float], ...]
    send_id: str | None = None
    start_time: float | None = None

    def key(self) -> tuple[str, ...]:
        identity = self.autoresponder_id or f"name:{self.autoresponder_name}"
        return (identity,) if self.send_id is None else (identity, self.send_id)


@dataclass(frozen=True, slots=True)
class Normalised:
    record: Record | None
    skipped_values: int
    unmapped: frozenset[str]
    problem: str | None = None


class FieldMapper:
    """Turns raw API records into Records using the default map plus an account's field_map."""

    def __init__(self, extra: Iterable[tuple[str, str]] = ()) -> None:
        by_field = {api: key for key, fields in DEFAULT_FIELDS.items() for api in fields}
        by_field.update({api.lower(): key for api, key in extra})
        self._fields_by_key: dict[str, list[str]] = {key: [] for key in METRIC_KEYS}
        for api, key in by_field.items():
            self._fields_by_key[key].append(api)
        self._mapped = frozenset(by_field)

    def normalise(self, raw: Mapping[str, Any], per_send: bool) -> Normalised:
        fields = {str(name).lower(): value for name, value in raw.items()}
        ar_id = _first(fields, ID_FIELDS, _identifier)
        name = _first(fields, NAME_FIELDS, _identifier)
        if ar_id is None and name is None:
            return Normalised(None, 0, frozenset(), "record has no autoresponderid or name")
        send_id = _first(fields, SEND_ID_FIELDS, _identifier) if per_send else None
        if per_send and send_id is None:
            return Normalised(None, 0, frozenset(), "send record has no statid")

        skipped = 0
        values: list[tuple[str, float]] = []
        for key, candidates in self._fields_by_key.items():
            present = [fields[api] for api in candidates if api in fields]
            if not present:
                continue
            number = next((n for n in map(parse_number, present) if n is not None and n >= 0), None)
            if number is None:
                skipped += 1
            else:
                values.append((key, number))

        start_time = None
        if per_send and "starttime" in fields:
            start_time = parse_number(fields["starttime"])
            if start_time is None or start_time < 0:
                start_time = None
                skipped += 1

        unmapped = frozenset(
            api
            for api, value in fields.items()
            if api not in self._mapped
            and api not in NON_METRIC_FIELDS
            and parse_number(value) is not None
        )
        record = Record(
            autoresponder_id=ar_id or "",
            autoresponder_name=name or "",
            values=tuple(values),
            send_id=send_id,
            start_time=start_time,
        )
        return Normalised(record, skipped, unmapped)


def _first(fields: Mapping[str, Any], names: tuple[str, ...], convert: Any) -> str | None:
    for name in names:
        if name in fields:
            converted: str | None = convert(fields[name])
            if converted is not None:
                return converted
    return None
