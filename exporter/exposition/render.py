"""Exposition: account state -> Prometheus text (0.0.4) and OpenMetrics bytes.

Sample lines are rendered once per poll, per account and per metric family, and
kept as bytes. A scrape only joins them under each family's header (the headers are
the only difference between the two formats) and appends the client library's small
process/platform metrics. The rendered part is compressed once per exposition.

Sample output::

    # HELP pinpointe_autoresponder_opens Emails opened ... as of the last successful poll.
    # TYPE pinpointe_autoresponder_opens gauge
    pinpointe_autoresponder_opens{account="acme",autoresponder_id="3",autoresponder_name="Wel"} 17
    # HELP pinpointe_up 1 if the last poll of the account succeeded completely, else 0.
    # TYPE pinpointe_up gauge
    pinpointe_up{account="acme"} 1
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from exporter import __version__
from exporter.exposition.families import (
    ALL_FAMILIES,
    ENGAGEMENT,
    HEALTH_FAMILIES,
    SEND_START,
    Family,
)
from exporter.exposition.gzipjoin import Chunk, OpenGzip
from exporter.reasons import POLL_ERROR_REASONS
from exporter.snapshot import Snapshot

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

Chunks = Mapping[str, Chunk]


def escape_label(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_value(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# Records rendered per block: the block's text lines are encoded to bytes before the
# next block starts, so a large account never holds all its lines as str objects.
_RENDER_BLOCK = 1024


def render_engagement(account: str, snapshot: Snapshot) -> dict[str, Chunk]:
    """Sample lines of every engagement family for one account's snapshot."""
    rendered: dict[str, list[bytes]] = {}
    account_label = f'account="{escape_label(account)}"'
    for group in snapshot.groupings:
        prefix = (
            "pinpointe_autoresponder_send_"
            if group.grouping == "send"
            else "pinpointe_autoresponder_"
        )
        # metric key -> (family name, text before the labels, text between labels and value)
        shapes = {
            key: (prefix + suffix, f"{prefix}{suffix}{{", f",{extra}}} " if extra else "} ")
            for key, (suffix, extra, _) in ENGAGEMENT.items()
        }
        records = group.records
        for first in range(0, len(records), _RENDER_BLOCK):
            lines: dict[str, list[str]] = {}
            for record in records[first : first + _RENDER_BLOCK]:
                labels = (
                    f'{account_label},autoresponder_id="{escape_label(record.autoresponder_id)}",'
                    f'autoresponder_name="{escape_label(record.autoresponder_name)}"'
                )
                if record.send_id is not None:
                    labels += f',send_id="{escape_label(record.send_id)}"'
                    if record.start_time is not None:
                        lines.setdefault(SEND_START.name, []).append(
                            f"{SEND_START.name}{{{labels}}} {format_value(record.start_time)}\n"
                        )
                for key, value in zip(
                    record.keys, memoryview(record.numbers).cast("d"), strict=True
                ):
                    name, head, tail = shapes[key]
                    text = (
                        str(int(value))
                        if value.is_integer() and -1e15 < value < 1e15
                        else repr(value)
                    )
                    family_lines = lines.get(name)
                    if family_lines is None:
                        family_lines = lines[name] = []
                    family_lines.append(f"{head}{labels}{tail}{text}\n")
            for name, block in lines.items():
                rendered.setdefault(name, []).append("".join(block).encode())
    chunks: dict[str, Chunk] = {}
    for name in list(rendered):
        blocks = rendered.pop(name)
        chunks[name] = Chunk.of(blocks[0] if len(blocks) == 1 else b"".join(blocks))
    return chunks


@dataclass(frozen=True)
class HealthFacts:
    """What the health families say about one account."""

    account: str
    poll_interval: float
    groupings: tuple[str, ...]
    poll_timeout: float | None = None
    attempted: bool = False
    up: bool = False
    last_success: float | None = None
    poll_duration: float | None = None
    errors: Mapping[str, int] = field(default_factory=dict)
    requests: Mapping[str, int] = field(default_factory=dict)
    records: Mapping[str, int] = field(default_factory=dict)
    skipped_values: Mapping[str, int] = field(default_factory=dict)
    truncated_labels: Mapping[str, int] = field(default_factory=dict)
    unmapped_fields: frozenset[str] = frozenset()


def render_health(facts: HealthFacts) -> dict[str, Chunk]:
    account = f'account="{escape_label(facts.account)}"'
    lines: dict[str, list[str]] = {name: [] for name in HEALTH_FAMILIES}

    def add(name: str, value: float, extra: str = "") -> None:
        labels = f"{account},{extra}" if extra else account
        lines[name].append(f"{name}{{{labels}}} {format_value(float(value))}\n")

    if facts.attempted:
        add("pinpointe_up", 1 if facts.up else 0)
    if facts.last_success is not None:
        add("pinpointe_last_success_timestamp_seconds", facts.last_success)
    if facts.poll_duration is not None:
        add("pinpointe_poll_duration_seconds", facts.poll_duration)
    add("pinpointe_poll_interval_seconds", facts.poll_interval)
    if facts.poll_timeout is not None:
        add("pinpointe_poll_timeout_seconds", facts.poll_timeout)
    for reason in POLL_ERROR_REASONS:
        add("pinpointe_poll_errors_total", facts.errors.get(reason, 0), f'reason="{reason}"')
    for code in sorted(facts.requests):
        add("pinpointe_api_requests_total", facts.requests[code], f'code="{escape_label(code)}"')
    for grouping in facts.groupings:
        add("pinpointe_records", facts.records.get(grouping, 0), f'grouping="{grouping}"')
        add(
            "pinpointe_skipped_values",
            facts.skipped_values.get(grouping, 0),
            f'grouping="{grouping}"',
        )
        add(
            "pinpointe_truncated_label_values",
            facts.truncated_labels.get(grouping, 0),
            f'grouping="{grouping}"',
        )
    for name in sorted(facts.unmapped_fields):
        add("pinpointe_unmapped_field_info", 1, f'field="{escape_label(name)}"')
    return {
        name: Chunk.of("".join(sample_lines).encode())
        for name, sample_lines in lines.items()
        if sample_lines
    }


_BUILD_INFO = {
    "pinpointe_exporter_build_info": Chunk.of(
        f'pinpointe_exporter_build_info{{version="{escape_label(__version__)}"}} 1\n'.encode()
    )
}


def render_reload(successful: bool, last_success: float, what: str = "config") -> dict[str, Chunk]:
    """The reload samples of the configuration (``config``) or the web config (``web_config``)."""
    ok = f"pinpointe_exporter_{what}_last_reload_successful"
    when = f"pinpointe_exporter_{what}_last_reload_success_timestamp_seconds"
    return {
        ok: Chunk.of(f"{ok} {1 if successful else 0}\n".encode()),
        when: Chunk.of(f"{when} {format_value(last_success)}\n".encode()),
    }


class Exposition:
    """One immutable rendering of all accounts, served as bytes until the next poll."""

    def __init__(self, account_chunks: Iterable[Chunks]) -> None:
        chunks = [*account_chunks, _BUILD_INFO]
        self._families: list[tuple[Family, list[Chunk]]] = []
        for family in ALL_FAMILIES:
            samples = [c[family.name] for c in chunks if family.name in c]
            if samples:
                self._families.append((family, samples))
        self._lock = threading.Lock()
        self._gzipped: dict[bool, OpenGzip] = {}
        self._finished: dict[bool, tuple[bytes, list[bytes]]] = {}

    def _chunks(self, openmetrics_format: bool) -> list[Chunk]:
        chunks: list[Chunk] = []
        for family, samples in self._families:
            chunks.append(_header_chunk(family, openmetrics_format))
            chunks.extend(samples)
        return chunks

    def parts(self, openmetrics_format: bool) -> list[bytes]:
        """The rendered families as a list of byte strings, to be written in order."""
        return [chunk.data for chunk in self._chunks(openmetrics_format)]

    def gzipped(self, openmetrics_format: bool, tail: bytes) -> list[bytes]:
        """A gzip body of the rendered families followed by ``tail``.

        Every chunk was compressed on its own when it was rendered; they are joined
        (and their checksums combined) once per exposition and format, and each scrape
        compresses only ``tail`` to finish the stream, so the result is one ordinary
        gzip member that every client can read. The finished body is kept while the
        same ``tail`` object comes again (the runtime metrics are reused for a second):
        scrapes in between share it and must not modify it.
        """
        finished = self._finished.get(openmetrics_format)
        if finished is not None and finished[0] is tail:
            return finished[1]
        cached = self._gzipped.get(openmetrics_format)
        if cached is None:
            with self._lock:
                cached = self._gzipped.get(openmetrics_format)
                if cached is None:
                    cached = OpenGzip.join(self._chunks(openmetrics_format))
                    self._gzipped[openmetrics_format] = cached
        parts = cached.finish(tail)
        self._finished[openmetrics_format] = (tail, parts)
        return parts


_HEADERS: dict[tuple[Family, bool], Chunk] = {}


def _header_chunk(family: Family, openmetrics_format: bool) -> Chunk:
    chunk = _HEADERS.get((family, openmetrics_format))
    if chunk is None:
        chunk = _HEADERS[(family, openmetrics_format)] = Chunk.of(family.header(openmetrics_format))
    return chunk
