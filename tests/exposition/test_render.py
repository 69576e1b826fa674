"""Rendering: snapshot and health facts -> sample lines; Exposition in both formats,
content negotiation, and the gzip body joined from pre-compressed families."""

from __future__ import annotations

import gzip
import zlib

import pytest

from exporter import __version__
from exporter.collector import FieldMapper
from exporter.exposition.gzipjoin import Chunk
from exporter.exposition.render import (
    Exposition,
    HealthFacts,
    escape_label,
    format_value,
    render_engagement,
    render_health,
)
from exporter.reasons import POLL_ERROR_REASONS
from exporter.snapshot import GroupingData, Record, Snapshot
from exporter.web.handler import accepts
from tests.conftest import metric_families, openmetrics_families

ODD_NAME = 'We"l\\c\nome'


def record(raw: dict[str, object], per_send: bool = False) -> Record:
    found = FieldMapper().normalise(raw, per_send).record
    assert found is not None
    return found


def snapshot() -> Snapshot:
    autoresponder = record(
        {
            "autoresponderid": 3,
            "autorespondername": ODD_NAME,
            "emailopens": 17,
            "sendsize": "20",
            "bouncecount_soft": 1.5,
        }
    )
    send = record(
        {
            "autoresponderid": 3,
            "autorespondername": "W",
            "emailopens": 2,
            "statid": "s9",
            "starttime": 1_700_000_000,
        },
        per_send=True,
    )
    return Snapshot(
        (GroupingData("autoresponder", (autoresponder,), 0), GroupingData("send", (send,), 0)),
        frozenset(),
        2,
        (),
    )


def text(exposition: Exposition, openmetrics: bool = False) -> str:
    return b"".join(exposition.parts(openmetrics)).decode()


def test_engagement_lines_per_family_with_escaped_labels() -> None:
    chunks = render_engagement("acme", snapshot())
    labels = 'account="acme",autoresponder_id="3",autoresponder_name="We\\"l\\\\c\\nome"'
    send = 'account="acme",autoresponder_id="3",autoresponder_name="W",send_id="s9"'
    assert {name: chunk.data.decode() for name, chunk in chunks.items()} == {
        "pinpointe_autoresponder_recipients": (
            f"pinpointe_autoresponder_recipients{{{labels}}} 20\n"
        ),
        "pinpointe_autoresponder_opens": f"pinpointe_autoresponder_opens{{{labels}}} 17\n",
        "pinpointe_autoresponder_bounces": (
            f'pinpointe_autoresponder_bounces{{{labels},bounce_type="soft"}} 1.5\n'
        ),
        "pinpointe_autoresponder_send_opens": f"pinpointe_autoresponder_send_opens{{{send}}} 2\n",
        "pinpointe_autoresponder_send_start_timestamp_seconds": (
            f"pinpointe_autoresponder_send_start_timestamp_seconds{{{send}}} 1700000000\n"
        ),
    }
    # each chunk carries its own compressed copy and checksum
    for chunk in chunks.values():
        assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(chunk.deflated) == chunk.data
        assert chunk.crc == zlib.crc32(chunk.data)


def test_health_lines_say_nothing_they_do_not_know() -> None:
    fresh = render_health(
        HealthFacts(account="acme", poll_interval=60, poll_timeout=90, groupings=("send",))
    )
    assert set(fresh) == {
        "pinpointe_poll_interval_seconds",
        "pinpointe_poll_timeout_seconds",
        "pinpointe_poll_errors_total",
        "pinpointe_records",
        "pinpointe_skipped_values",
        "pinpointe_truncated_label_values",
    }
    zeros = "".join(
        f'pinpointe_poll_errors_total{{account="acme",reason="{reason}"}} 0\n'
        for reason in POLL_ERROR_REASONS
    )
    assert fresh["pinpointe_poll_errors_total"].data.decode() == zeros
    assert fresh["pinpointe_poll_timeout_seconds"].data == (
        b'pinpointe_poll_timeout_seconds{account="acme"} 90\n'
    )
    assert (
        fresh["pinpointe_records"].data == b'pinpointe_records{account="acme",grouping="send"} 0\n'
    )


def test_health_lines_after_polls() -> None:
    facts = HealthFacts(
        account="acme",
        poll_interval=300,
        groupings=("autoresponder",),
        attempted=True,
        up=False,
        last_success=1_700_000_000.25,
        poll_duration=1.5,
        errors={"auth": 2},
        requests={"200": 7, "error": 1},
        records={"autoresponder": 12},
        skipped_values={"autoresponder": 3},
        unmapped_fields=frozenset({"odd"}),
    )
    lines = {name: chunk.data.decode() for name, chunk in render_health(facts).items()}
    assert lines["pinpointe_up"] == 'pinpointe_up{account="acme"} 0\n'
    assert lines["pinpointe_last_success_timestamp_seconds"] == (
        'pinpointe_last_success_timestamp_seconds{account="acme"} 1700000000.25\n'
    )
    assert lines["pinpointe_poll_duration_seconds"] == (
        'pinpointe_poll_duration_seconds{account="acme"} 1.5\n'
    )
    assert (
        'pinpointe_poll_errors_total{account="acme",reason="auth"} 2\n'
        in lines["pinpointe_poll_errors_total"]
    )
    assert lines["pinpointe_api_requests_total"] == (
        'pinpointe_api_requests_total{account="acme",code="200"} 7\n'
        'pinpointe_api_requests_total{account="acme",code="error"} 1\n'
    )
    assert lines["pinpointe_records"] == (
        'pinpointe_records{account="acme",grouping="autoresponder"} 12\n'
    )
    assert lines["pinpointe_skipped_values"] == (
        'pinpointe_skipped_values{account="acme",grouping="autoresponder"} 3\n'
    )
    assert lines["pinpointe_unmapped_field_info"] == (
        'pinpointe_unmapped_field_info{account="acme",field="odd"} 1\n'
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0"),
        (17.0, "17"),
        (1.5, "1.5"),
        (1e15, "1000000000000000.0"),
        (1e20, "1e+20"),
        (-3.0, "-3"),
    ],
)
def test_format_value(value: float, shown: str) -> None:
    assert format_value(value) == shown


def test_escape_label() -> None:
    assert escape_label("plain") == "plain"
    assert escape_label(ODD_NAME) == 'We\\"l\\\\c\\nome'


def exposition_of_two_accounts() -> Exposition:
    accounts = []
    for name in ("acme", "beta"):
        facts = HealthFacts(account=name, poll_interval=60, groupings=("autoresponder",))
        accounts.append({**render_engagement(name, snapshot()), **render_health(facts)})
    return Exposition(accounts)


def test_one_header_per_family_with_every_accounts_samples_under_it() -> None:
    exposition = exposition_of_two_accounts()
    families = {f.name: f for f in metric_families(text(exposition))}
    opens = families["pinpointe_autoresponder_opens"]
    assert [(s.labels["account"], s.value) for s in opens.samples] == [("acme", 17), ("beta", 17)]
    assert text(exposition).count("# TYPE pinpointe_autoresponder_opens gauge\n") == 1
    build = families["pinpointe_exporter_build_info"].samples
    assert [(s.labels, s.value) for s in build] == [({"version": __version__}, 1)]


def test_text_and_openmetrics_differ_only_in_counter_headers() -> None:
    exposition = exposition_of_two_accounts()
    plain, om = text(exposition), text(exposition, openmetrics=True)
    assert "# TYPE pinpointe_poll_errors_total counter\n" in plain
    assert "# TYPE pinpointe_poll_errors counter\n" in om
    assert [line for line in plain.splitlines() if not line.startswith("#")] == [
        line for line in om.splitlines() if not line.startswith("#")
    ]
    # both parse in their own format (OpenMetrics once the runtime part adds # EOF)
    assert len(list(openmetrics_families(om + "# EOF\n"))) == len(list(metric_families(plain)))


def test_an_empty_exposition_serves_only_the_build_info() -> None:
    assert text(Exposition([])) == (
        "# HELP pinpointe_exporter_build_info Version of pinpointe-exporter; always 1.\n"
        "# TYPE pinpointe_exporter_build_info gauge\n"
        f'pinpointe_exporter_build_info{{version="{__version__}"}} 1\n'
    )


def test_gzip_body_joined_from_chunks_is_one_member_of_the_same_bytes() -> None:
    facts = HealthFacts(account="acme", poll_interval=60, groupings=("autoresponder",))
    engagement = {
        "pinpointe_autoresponder_opens": Chunk.of(
            b"".join(
                b'pinpointe_autoresponder_opens{account="acme",autoresponder_id="%d",'
                b'autoresponder_name="x"} %d\n' % (i, i * 7)
                for i in range(5000)
            )
        )
    }
    exposition = Exposition([{**engagement, **render_health(facts)}])
    for openmetrics in (False, True):
        tail = b"# EOF\n" if openmetrics else b"process_open_fds 7\n"
        body = b"".join(exposition.gzipped(openmetrics, tail))
        assert gzip.decompress(body) == b"".join(exposition.parts(openmetrics)) + tail
        reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
        reader.decompress(body)
        assert reader.eof and reader.unused_data == b""
    assert b"# TYPE pinpointe_poll_errors counter" in b"".join(exposition.parts(True))
    assert b"# TYPE pinpointe_poll_errors_total counter" in b"".join(exposition.parts(False))


def test_a_gzip_body_is_finished_once_per_runtime_rendering() -> None:
    exposition = exposition_of_two_accounts()
    tail = b"process_open_fds 7\n"
    first = exposition.gzipped(False, tail)
    assert exposition.gzipped(False, tail) is first  # the same tail object: the same body
    other = exposition.gzipped(False, b"process_open_fds 8\n")
    assert other is not first
    assert gzip.decompress(b"".join(other)).endswith(b"process_open_fds 8\n")
    assert gzip.decompress(b"".join(exposition.gzipped(True, b"# EOF\n"))).endswith(b"# EOF\n")


@pytest.mark.parametrize(
    ("header", "wanted", "accepted"),
    [
        (None, "gzip", False),
        ("", "gzip", False),
        ("gzip", "gzip", True),
        ("deflate, gzip;q=0.5", "gzip", True),
        ("gzip;q=0", "gzip", False),
        ("gzip;q=0.0, br", "gzip", False),
        ("gzip;q=nonsense", "gzip", False),
        ("GZIP", "gzip", True),
        ("x-gzip", "gzip", False),
        ("application/openmetrics-text", "application/openmetrics-text", True),
        (
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4",
            "application/openmetrics-text",
            True,
        ),
        ("text/plain;version=0.0.4", "application/openmetrics-text", False),
        ("*/*", "application/openmetrics-text", False),
    ],
)
def test_negotiation(header: str | None, wanted: str, accepted: bool) -> None:
    """handler.accepts picks the format (Accept) and the encoding (Accept-Encoding)."""
    assert accepts(header, wanted) is accepted
