"""fields.py in-process: field names are matched whole whatever max_label_length says,
and no name a server sends stays in memory beyond a small bound."""

from __future__ import annotations

import gc
import tracemalloc

from exporter.collector.fields import FieldMapper, Labels
from exporter.snapshot import METRIC_KEYS

# One record with every default metric field, under the field names Pinpointe uses.
EVERY_FIELD = {
    "autoresponderid": "7",
    "autorespondername": "Welcome",
    "sendsize": "100",
    "emailopens": "50",
    "emailopens_unique": "40",
    "linkclicks": "20",
    "linkclicks_unique": "10",
    "emailforwards": "2",
    "unsubscribecount": "1",
    "bouncecount_soft": "3",
    "bouncecount_hard": "4",
    "bouncecount_unknown": "5",
    "feedbackloopcount": "6",
}


def test_a_short_label_limit_cuts_label_values_not_field_names() -> None:
    mapper = FieldMapper(labels=Labels(limit=16))
    record = mapper.normalise(EVERY_FIELD, per_send=False).record
    assert record is not None
    assert [key for key, _ in record.values] == list(METRIC_KEYS)
    assert record.autoresponder_name == "Welcome"


def test_a_field_map_key_longer_than_the_label_limit_still_maps() -> None:
    api = "engagement_opens_counted_by_ours"  # 32 characters
    mapper = FieldMapper([(api, "opens")], labels=Labels(limit=20))
    normalised = mapper.normalise({"autoresponderid": "7", api.upper(): "9"}, per_send=False)
    assert normalised.record is not None
    assert dict(normalised.record.values) == {"opens": 9.0}
    assert normalised.unmapped == frozenset()


def test_unmapped_names_are_reported_as_label_values() -> None:
    mapper = FieldMapper(labels=Labels(limit=40, secrets=lambda: ("s3cr3t",)))
    raw = {"autoresponderid": "7", "extra_S3CR3T_" + "x" * 60: "1"}
    (name,) = mapper.normalise(raw, per_send=False).unmapped
    assert name == "extra_<redacted>_" + "x" * 11 + "…[truncated]"


def test_names_a_server_sends_do_not_accumulate() -> None:
    """Every record brings a new 1 MB field name: what the mapper keeps stays small."""
    mapper = FieldMapper()
    gc.collect()
    tracemalloc.start()
    try:
        for page in range(100):
            raw = {"autoresponderid": str(page), f"{page:04d}" + "f" * 1_000_000: "1"}
            assert mapper.normalise(raw, per_send=False).record is not None
            del raw
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert retained < 2_000_000, f"{retained:,} bytes kept after 100 MB of names"
