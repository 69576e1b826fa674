"""Pinpointe record fields: which API field feeds which metric, and value validation.

Field names are matched case-insensitively. Values arrive as ints, floats or numeric
strings; anything else (and anything negative or not finite) is skipped and counted,
never exported as 0.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.logs import redact_secrets
from exporter.pinpointe import json_kind
from exporter.snapshot import DEFAULT_FIELDS, METRIC_KEYS, Record

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


# Ends a label value cut at max_label_length (the marker counts towards the length).
TRUNCATED = "…[truncated]"
DEFAULT_MAX_LABEL_LENGTH = 1024


class Labels:
    """Label values from server text: valid UTF-8, no secret in them, at most ``limit`` long.

    ``secrets`` gives the forms of the account's token in use (asked every time: a
    ``usertoken_file`` may rotate)."""

    def __init__(
        self,
        limit: int = DEFAULT_MAX_LABEL_LENGTH,
        secrets: Callable[[], tuple[str, ...]] = tuple,
    ) -> None:
        self.limit = max(limit, len(TRUNCATED) + 1)
        self.secrets = secrets

    def clean(self, value: str) -> tuple[str, bool]:
        """The value to publish, and whether it had to be truncated."""
        value = clean_label(value)
        value = redact_secrets(value, self.secrets())
        if len(value) <= self.limit:
            return value, False
        return value[: self.limit - len(TRUNCATED)] + TRUNCATED, True

    def identifier(self, value: Any) -> tuple[str | None, bool]:
        """An id or name as a label value: a string, or a number written as JSON would
        (an integral float without ``.0``); None for anything else (NaN included)."""
        if isinstance(value, bool) or value is None:
            return None, False
        if isinstance(value, float):
            if not math.isfinite(value):
                return None, False
            value = int(value) if value.is_integer() else value
        if isinstance(value, int | float):
            return self.clean(str(value))
        if isinstance(value, str) and value.strip():
            return self.clean(value.strip())
        return None, False


@dataclass(frozen=True, slots=True)
class Normalised:
    record: Record | None
    skipped_values: int
    unmapped: frozenset[str]
    problem: str | None = None
    truncated: tuple[str, ...] = ()  # the labels whose values were cut at max_label_length


class FieldMapper:
    """Turns raw API records into Records using the default map plus an account's field_map."""

    def __init__(self, extra: Iterable[tuple[str, str]] = (), labels: Labels | None = None) -> None:
        self.labels = labels or Labels()
        mapped = {api.lower(): key for api, key in extra}
        by_field = {api: key for key, fields in DEFAULT_FIELDS.items() for api in fields}
        by_field.update(mapped)
        fields_by_key: dict[str, list[str]] = {key: [] for key in METRIC_KEYS}
        # field_map entries come first: they win over the default fields of their metric.
        for api, key in sorted(by_field.items(), key=lambda item: item[0] not in mapped):
            fields_by_key[key].append(api)
        self._fields_by_key: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
            (key, tuple(apis)) for key, apis in fields_by_key.items() if apis
        )
        self._mapped = frozenset(by_field)
        self._known = self._mapped | NON_METRIC_FIELDS
        self._lower: dict[str, str] = {}
        self._reported: dict[str, str] = {}
        self._unmapped: dict[tuple[str, ...], frozenset[str]] = {}
        self._keys: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _lowered(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        # Records of one API repeat the same few field names: lower-case each name once.
        # Names are matched whole (max_label_length bounds label values, not names); a
        # long name is not cached, so a server cannot fill the cache with megabytes.
        lower = self._lower
        fields: dict[str, Any] = {}
        for name, value in raw.items():
            key = lower.get(name) if type(name) is str else None
            if key is None:
                key = clean_label(str(name)).lower()
                if (
                    type(name) is str
                    and len(name) <= _CACHED_NAME_LENGTH
                    and len(lower) < _NAME_CACHE_SIZE
                ):
                    lower[name] = key
            fields[key] = value
        return fields

    def normalise(self, raw: Any, per_send: bool) -> Normalised:
        if not isinstance(raw, Mapping):
            return Normalised(None, 0, _NOTHING, f"a record is {json_kind(raw)}, not an object")
        fields = self._lowered(raw)
        identifier = self.labels.identifier
        truncated: list[str] = []
        ar_id = _first(fields, ID_FIELDS, identifier, truncated, "autoresponder_id")
        name = _first(fields, NAME_FIELDS, identifier, truncated, "autoresponder_name")
        if ar_id is None and name is None:
            return Normalised(None, 0, _NOTHING, "record has no autoresponderid or name")
        send_id = (
            _first(fields, SEND_ID_FIELDS, identifier, truncated, "send_id") if per_send else None
        )
        if per_send and send_id is None:
            return Normalised(None, 0, _NOTHING, "send record has no statid")

        skipped = 0
        keys: list[str] = []
        numbers = array("d")
        for key, candidates in self._fields_by_key:
            found = False
            number = None
            for api in candidates:
                if api in fields:
                    found = True
                    number = _count(fields[api])
                    if number is not None:
                        break
            if number is not None:
                keys.append(key)
                numbers.append(number)
            elif found:
                skipped += 1

        start_time = None
        if per_send and "starttime" in fields:
            start_time = parse_number(fields["starttime"])
            if start_time is None or start_time < 0:
                start_time = None
                skipped += 1

        known = self._known
        other = tuple(
            self._unmapped_name(api)
            for api, value in fields.items()
            if api not in known and parse_number(value) is not None
        )
        record = Record(
            autoresponder_id=ar_id or "",
            autoresponder_name=name or "",
            keys=self._shared_keys(tuple(keys)),
            numbers=numbers.tobytes(),
            send_id=send_id,
            start_time=start_time,
        )
        unmapped = self._unmapped_set(other) if other else _NOTHING
        return Normalised(record, skipped, unmapped, truncated=tuple(truncated))

    def _unmapped_name(self, api: str) -> str:
        """A field name as it is reported (a label value: redacted, at most max_label_length)."""
        name = self._reported.get(api)
        if name is None:
            name = self.labels.clean(api)[0]
            if len(api) <= _CACHED_NAME_LENGTH and len(self._reported) < _NAME_CACHE_SIZE:
                self._reported[api] = name
        return name

    def _shared_keys(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        return self._keys.setdefault(keys, keys)

    def _unmapped_set(self, names: tuple[str, ...]) -> frozenset[str]:
        cached = self._unmapped.get(names)
        if cached is None:
            cached = frozenset(names)
            if (
                len(self._unmapped) < _NAME_CACHE_SIZE
                and sum(map(len, names)) <= _CACHED_NAME_LENGTH * 16
            ):
                self._unmapped[names] = cached
        return cached


_NAME_CACHE_SIZE = 4096
# Names longer than this are lower-cased on every record instead of cached: the caches
# stay under a few MB whatever names a server sends.
_CACHED_NAME_LENGTH = 256
_NOTHING: frozenset[str] = frozenset()


def _count(value: Any) -> float | None:
    """A non-negative finite number, or None; plain digit strings take the short way."""
    if type(value) is str and len(value) < 16 and value.isdigit() and value.isascii():
        return float(value)
    number = parse_number(value)
    return number if number is not None and number >= 0 else None


def _first(
    fields: Mapping[str, Any],
    names: tuple[str, ...],
    convert: Callable[[Any], tuple[str | None, bool]],
    truncated: list[str],
    label: str,
) -> str | None:
    for name in names:
        if name in fields:
            converted, cut = convert(fields[name])
            if converted is not None:
                if cut:
                    truncated.append(label)
                return converted
    return None
