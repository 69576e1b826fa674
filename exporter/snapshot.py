"""The data that crosses stages: what one poll of an account produced.

fields.py turns API records into Records, collect.py gathers them into a Snapshot and
metrics.py renders a Snapshot; this module is the only thing they share, so the
renderer does not import the collector.
"""

from __future__ import annotations

from dataclasses import dataclass

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
# A sample line without its label values: the longest family name, the label names,
# quotes, bounce_type and a value (129 bytes in the longest line).
SAMPLE_LINE_BYTES = 130
# A Record object without its label values: the object, its strings' headers, the
# packed values.
RECORD_BYTES = 384


def escaped_length(value: str) -> int:
    """Bytes of a label value in the exposition: UTF-8, with \\, " and newline escaped."""
    size = len(value) if value.isascii() else len(value.encode())
    return size + value.count("\\") + value.count('"') + value.count("\n")


@dataclass(frozen=True, slots=True)
class Record:
    """One normalised Pinpointe result: an autoresponder, or one send of it.

    A large account holds hundreds of thousands of these at once, so the values are kept
    compact: ``keys`` is a tuple shared by every record with the same fields and
    ``numbers`` the values as packed doubles in the same order.
    """

    autoresponder_id: str
    autoresponder_name: str
    keys: tuple[str, ...]
    numbers: bytes
    send_id: str | None = None
    start_time: float | None = None

    @property
    def values(self) -> tuple[tuple[str, float], ...]:
        """(metric key, value) pairs in METRIC_KEYS order."""
        return tuple(zip(self.keys, memoryview(self.numbers).cast("d"), strict=True))

    def exposition_bytes(self, account: str) -> int:
        """About the bytes its series take on /metrics (text format), a little more
        rather than less: a series per value (and the send's start time), each its
        label values (UTF-8, escaped) plus the rest of a sample line."""
        labels = self.label_bytes() + escaped_length(account)
        series = len(self.keys) + (self.send_id is not None)
        return series * (SAMPLE_LINE_BYTES + labels)

    def memory_bytes(self) -> int:
        """About what the record takes in memory while a poll collects it."""
        return RECORD_BYTES + self.label_bytes()

    def label_bytes(self) -> int:
        return (
            escaped_length(self.autoresponder_id)
            + escaped_length(self.autoresponder_name)
            + escaped_length(self.send_id or "")
        )

    def key(self) -> tuple[str, ...]:
        """What makes two records one: the autoresponder (its id, or its name when it has
        none; an id "name:x" is not the name "x"), then the send."""
        return self.autoresponder_key() + (() if self.send_id is None else (self.send_id,))

    def autoresponder_key(self) -> tuple[str, str]:
        if self.autoresponder_id:
            return ("id", self.autoresponder_id)
        return ("name", self.autoresponder_name)

    def shown(self) -> str:
        """The autoresponder as a message names it."""
        return self.autoresponder_id or f"name:{self.autoresponder_name}"


@dataclass(frozen=True)
class GroupingData:
    grouping: str
    records: tuple[Record, ...]
    skipped_values: int
    truncated_labels: int = 0  # label values cut at max_label_length


@dataclass(frozen=True)
class Snapshot:
    """Everything one successful poll of an account produced."""

    groupings: tuple[GroupingData, ...]
    unmapped_fields: frozenset[str]
    pages: int
    warnings: tuple[str, ...]

    @property
    def record_count(self) -> int:
        return sum(len(group.records) for group in self.groupings)
