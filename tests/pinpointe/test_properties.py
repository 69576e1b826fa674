"""Property-based tests (hypothesis) of envelope parsing and record normalising, in-process."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.collector.fields import FieldMapper
from exporter.pinpointe import Page, ResponseError, parse_body
from tests.strategies import json_values

REASONS = {"invalid_response", "pagination", "auth", "api_failed"}


envelopes = st.fixed_dictionaries(
    {"status": st.sampled_from(["SUCCESS", "Success", "FAILED", "", 1])},
    optional={
        "data": json_values,
        "pagination": st.dictionaries(st.sampled_from(["next", "limit"]), json_values),
        "errormessage": json_values,
    },
) | st.builds(lambda body: {"response": body}, json_values)


def check_parse(body: Any) -> None:
    try:
        page = parse_body(body)
    except ResponseError as error:
        assert error.reason in REASONS
        assert isinstance(error.message, str) and error.message
        return
    assert isinstance(page, Page)
    # Any JSON value may stand among the records: the collector uses it or says why not.
    mapper = FieldMapper()
    for item in page.records:
        normalised = mapper.normalise(item, per_send=False)
        assert normalised.record is not None or normalised.problem
    assert page.next_cursor is None or (
        isinstance(page.next_cursor, int)
        and not isinstance(page.next_cursor, bool)
        and page.next_cursor >= 0
    )


@given(json_values)
@settings(max_examples=200, deadline=None)
def test_any_json_value_parses_to_a_page_or_a_typed_error(body: Any) -> None:
    check_parse(body)


@given(envelopes)
@settings(max_examples=200, deadline=None)
def test_any_envelope_parses_to_a_page_or_a_typed_error(body: Any) -> None:
    check_parse(body)
    # what JSON can carry, the parser takes the same way after a round trip
    try:
        text = json.dumps(body)
    except ValueError:
        return
    check_parse(json.loads(text))


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "autoresponderid",
                "name",
                "sendsize",
                "emailopens",
                "statid",
                "starttime",
                "linkclicks",
                "x",
            ]
        )
        | st.text(max_size=8),
        json_values,
        max_size=8,
    ),
    st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_any_record_normalises_to_finite_non_negative_values(
    raw: dict[str, Any], per_send: bool
) -> None:
    result = FieldMapper().normalise(raw, per_send)
    assert result.skipped_values >= 0
    if result.record is None:
        assert result.problem
        return
    for _, value in result.record.values:
        assert math.isfinite(value) and value >= 0
    if result.record.start_time is not None:
        assert math.isfinite(result.record.start_time) and result.record.start_time >= 0
