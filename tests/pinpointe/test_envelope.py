"""Response envelopes and record fields: every documented variant, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.collector.fields import TRUNCATED, FieldMapper, Labels, parse_number
from exporter.config import Secret
from exporter.pinpointe import Page, ResponseError, parse_body

RECORD = {"autoresponderid": "7", "autorespondername": "Welcome", "sendsize": "3"}
OTHER = {"autoresponderid": "8", "autorespondername": "Bye", "sendsize": "5"}


@pytest.mark.parametrize(
    ("body", "records"),
    [
        ({"status": "SUCCESS", "data": [RECORD, OTHER]}, [RECORD, OTHER]),
        ({"status": "Success", "data": {"0": RECORD, "1": OTHER}}, [RECORD, OTHER]),
        ({"status": "success", "data": {"10": OTHER, "9": RECORD}}, [RECORD, OTHER]),
        ({"status": "SUCCESS", "data": RECORD}, [RECORD]),
        ({"status": "SUCCESS", "data": {"item": [RECORD, OTHER]}}, [RECORD, OTHER]),
        ({"status": "SUCCESS", "data": {"item": RECORD}}, [RECORD]),
        ({"response": {"status": "SUCCESS", "data": [RECORD]}}, [RECORD]),
        ({"Status": "SUCCESS", "Data": [RECORD]}, [RECORD]),
        ({"status": "SUCCESS", "data": []}, []),
        ({"status": "SUCCESS", "data": {}}, []),
        ({"status": "SUCCESS", "data": None}, []),
        ({"status": "SUCCESS"}, []),
        ({"status": "SUCCESS", "data": {"item": []}}, []),
    ],
)
def test_every_envelope_variant(body: dict[str, Any], records: list[dict[str, Any]]) -> None:
    assert list(parse_body(body).records) == records


@pytest.mark.parametrize(
    ("body", "cursor"),
    [
        ({"status": "SUCCESS", "data": [], "pagination": {"next": 100}}, 100),
        ({"status": "SUCCESS", "data": [], "pagination": {"next": "200"}}, 200),
        ({"status": "SUCCESS", "data": {"item": [], "pagination": {"next": 5}}}, 5),
        ({"response": {"status": "SUCCESS", "data": []}, "pagination": {"next": 7}}, 7),
        ({"response": {"status": "SUCCESS", "data": [], "pagination": {"next": 8}}}, 8),
        ({"status": "SUCCESS", "data": [], "pagination": {"next": 0}}, 0),
        ({"status": "SUCCESS", "data": [], "pagination": {"next": "0"}}, 0),
        ({"status": "SUCCESS", "data": [], "pagination": {}}, None),
        ({"status": "SUCCESS", "data": []}, None),
    ],
)
def test_pagination_section_anywhere(body: dict[str, Any], cursor: int | None) -> None:
    assert parse_body(body) == Page((), cursor)


def test_the_data_pagination_section_is_not_a_record() -> None:
    body = {"status": "SUCCESS", "data": {"0": RECORD, "pagination": {"next": 0}}}
    assert list(parse_body(body).records) == [RECORD]


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        (
            {"status": "FAILED", "errormessage": "Unable to verify user credentials"},
            "auth",
            "Unable to verify user credentials",
        ),
        (
            {"status": "FAILED", "errormessage": ["Invalid grouping", "Try again"]},
            "api_failed",
            "Invalid grouping; Try again",
        ),
        ({"status": "FAILED"}, "api_failed", "status 'FAILED' without an errormessage"),
        ({"data": []}, "invalid_response", "the response has no status field"),
        ([RECORD], "invalid_response", "expected a JSON object, got a list"),
        ("SUCCESS", "invalid_response", "expected a JSON object, got a string"),
        ({"status": "SUCCESS", "data": "x"}, "invalid_response", "data is a string, not records"),
        (
            {"status": "SUCCESS", "data": [], "pagination": {"next": "soon"}},
            "pagination",
            "pagination.next is 'soon', not a record offset",
        ),
        (
            {"status": "SUCCESS", "data": [], "pagination": {"next": -100}},
            "pagination",
            "pagination.next is -100, not a record offset",
        ),
    ],
)
def test_failures_are_typed(body: Any, reason: str, message: str) -> None:
    with pytest.raises(ResponseError) as raised:
        parse_body(body)
    assert (raised.value.reason, raised.value.message) == (reason, message)


@pytest.mark.parametrize(
    "data",
    [
        [RECORD, None, "x", [1, 2], 3, RECORD],
        {"0": RECORD, "1": None, "2": "x", "3": [1, 2], "4": 3, "5": RECORD},
        {"item": [RECORD, None, "x", [1, 2], 3, RECORD]},
    ],
)
def test_a_value_among_records_is_kept_in_place_for_the_collector_to_skip(data: Any) -> None:
    page = parse_body({"status": "SUCCESS", "data": data})
    assert page.records == (RECORD, None, "x", [1, 2], 3, RECORD)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (3, 3.0),
        ("3", 3.0),
        (" 42 ", 42.0),
        ("2.5", 2.5),
        (1e20, 1e20),
        ("1e3", 1000.0),
        ("-4", -4.0),
        ("", None),
        ("n/a", None),
        ("1_000", None),
        ("nan", None),
        ("inf", None),
        (True, None),
        (None, None),
        ([1], None),
        (float("nan"), None),
        (10**400, None),
    ],
)
def test_numbers(value: Any, number: float | None) -> None:
    assert parse_number(value) == number


def test_fields_are_mapped_case_insensitively_with_the_default_map() -> None:
    raw = {
        "AutoresponderID": "7",
        "AutoresponderName": "Welcome",
        "SENTTO": "100",
        "EmailOpens": "40",
        "emailopens_unique": 30,
        "linkclicks": "9",
        "uniqueclicks": "7",
        "emailforwards": "1",
        "unsubscribecount": "2",
        "bouncecount_soft": "3",
        "bouncecount_hard": "4",
        "bouncecount_unknown": "0",
        "feedbackloopcount": "1",
        "listid": "3",
    }
    result = FieldMapper().normalise(raw, per_send=False)
    assert result.record is not None
    assert result.record.autoresponder_id == "7"
    assert result.record.autoresponder_name == "Welcome"
    assert dict(result.record.values) == {
        "recipients": 100,
        "opens": 40,
        "unique_opens": 30,
        "clicks": 9,
        "unique_clicks": 7,
        "forwards": 1,
        "unsubscribes": 2,
        "bounces_soft": 3,
        "bounces_hard": 4,
        "bounces_unknown": 0,
        "complaints": 1,
    }
    assert result.skipped_values == 0
    assert result.unmapped == frozenset()


def test_absent_fields_give_no_value_and_invalid_ones_are_skipped_and_counted() -> None:
    raw = {"id": 5, "name": "X", "sendsize": "n/a", "emailopens": -1, "linkclicks": "2.5"}
    result = FieldMapper().normalise(raw, per_send=False)
    assert result.record is not None
    assert dict(result.record.values) == {"clicks": 2.5}
    assert result.skipped_values == 2


def test_field_map_and_unmapped_fields() -> None:
    raw = {"id": 5, "name": "X", "SpamCount": "4", "mobileopens": "9", "note": "hello"}
    mapper = FieldMapper((("spamcount", "complaints"),))
    result = mapper.normalise(raw, per_send=False)
    assert result.record is not None
    assert dict(result.record.values) == {"complaints": 4}
    assert result.unmapped == frozenset({"mobileopens"})


def test_records_without_identity_are_rejected() -> None:
    assert FieldMapper().normalise({"sendsize": "3"}, per_send=False).record is None
    result = FieldMapper().normalise({"id": "3", "sendsize": "3"}, per_send=True)
    assert result.record is None
    assert result.problem == "send record has no statid"


def test_send_records_carry_send_id_and_start_time() -> None:
    raw = {"autoresponderid": 2, "statid": "991", "starttime": "1767225600", "sendsize": 4}
    record = FieldMapper().normalise(raw, per_send=True).record
    assert record is not None
    assert (record.send_id, record.start_time, record.autoresponder_name) == (
        "991",
        1767225600.0,
        "",
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("9" * 5000, "a 5000-digit number"),
        (" " + "1" * 17 + " ", "a 17-digit number"),
        (2**60, "a number too large to be an offset"),
        ("²", "'²'"),
        ("x" * 100, "'" + "x" * 36 + "..."),
    ],
)
def test_odd_pagination_values_are_one_line_pagination_errors(value: Any, shown: str) -> None:
    with pytest.raises(ResponseError) as raised:
        parse_body({"status": "SUCCESS", "data": [], "pagination": {"next": value}})
    assert raised.value.reason == "pagination"
    assert raised.value.message == f"pagination.next is {shown}, not a record offset"


def test_indexed_data_with_huge_digit_keys_sorts_by_value() -> None:
    data = {"1" * 5000: OTHER, "2": RECORD, "0" + "9": RECORD}
    assert list(parse_body({"status": "SUCCESS", "data": data}).records) == [
        RECORD,
        RECORD,
        OTHER,
    ]


def test_a_huge_errormessage_is_cut() -> None:
    with pytest.raises(ResponseError) as raised:
        parse_body({"status": "FAILED", "errormessage": "e" * 50_000})
    assert raised.value.message == "e" * 1000 + "... (50000 characters)"


def test_label_values_are_bounded_and_never_hold_the_token() -> None:
    token = "tok-label-8a3f9e"
    mapper = FieldMapper(labels=Labels(limit=32, secrets=lambda: (token,)))
    raw = {
        "autoresponderid": "7" * 40,
        "autorespondername": f"Welcome {token}",
        "x" * 100: 5,
    }
    result = mapper.normalise(raw, per_send=False)
    assert result.record is not None
    assert result.record.autoresponder_id == "7" * (32 - len(TRUNCATED)) + TRUNCATED
    assert result.record.autoresponder_name == "Welcome <redacted>"
    assert result.truncated == ("autoresponder_id",)
    assert result.unmapped == frozenset({"x" * (32 - len(TRUNCATED)) + TRUNCATED})
    # a token cut in half by truncation is redacted first, so no part of it shows
    cut = mapper.normalise({"id": "1", "name": "n" * 25 + token}, per_send=False).record
    assert cut is not None and cut.autoresponder_name == "n" * 20 + TRUNCATED


def test_a_usertoken_with_capitals_in_a_field_name_is_redacted() -> None:
    """Field names are lower-cased; the token in one must not survive in lower case."""
    token = Secret("Tok-UPPER-Secret-9f8e7d")
    mapper = FieldMapper(labels=Labels(secrets=token.forms))
    raw = {"autoresponderid": 1, "autorespondername": "a", "sendsize": 1, token.reveal(): 5}
    unmapped = mapper.normalise(raw, per_send=False).unmapped
    assert unmapped == {"<redacted>"}
    labels = Labels(secrets=token.forms)
    for folded in ("tok-upper-secret-9f8e7d", "TOK-UPPER-SECRET-9F8E7D", "tOK-upper-SECRET-9f8e7d"):
        assert labels.clean(f"x {folded} y")[0] == "x <redacted> y", folded
    shouted = {"autoresponderid": 1, "sendsize": 1, "X_" + token.reveal().upper(): 5}
    assert mapper.normalise(shouted, per_send=False).unmapped == {"x_<redacted>"}


def test_numeric_ids_are_bounded_like_text_and_nan_is_no_id() -> None:
    mapper = FieldMapper(labels=Labels(limit=32))
    long_id = mapper.normalise({"autoresponderid": 10**100, "name": "a"}, per_send=False)
    assert long_id.record is not None
    assert long_id.record.autoresponder_id == str(10**100)[: 32 - len(TRUNCATED)] + TRUNCATED
    assert long_id.truncated == ("autoresponder_id",)
    as_float = mapper.normalise({"autoresponderid": 1e40, "name": "a"}, per_send=False).record
    assert as_float is not None and as_float.autoresponder_id.endswith(TRUNCATED)
    assert mapper.normalise({"id": 12.0, "name": "a"}, per_send=False).record.autoresponder_id == (  # type: ignore[union-attr]
        "12"
    )
    for odd in (float("nan"), float("inf"), float("-inf")):
        result = mapper.normalise({"autoresponderid": odd, "sendsize": 1}, per_send=False)
        assert result.record is None, odd
        assert result.problem == "record has no autoresponderid or name"
        named = mapper.normalise({"id": odd, "name": "Welcome"}, per_send=False).record
        assert named is not None and named.autoresponder_id == "", odd
