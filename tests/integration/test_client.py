"""The Pinpointe client and collector against the simulator over real HTTP."""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from exporter.collector import AccountFetcher
from exporter.config import AccountConfig, Selector
from exporter.pinpointe import PinpointeClient, PollError
from exporter.simulator import SimAccount, Simulator
from tests.conftest import StartSimulator, account_settings
from tests.integration.oddserver import poll_odd_server

TOKEN = "tok-3f9a1c77e2"


def account_for(sim: Simulator, **overrides: Any) -> AccountConfig:
    return account_settings(sim, TOKEN, **overrides)


def collect(sim: Simulator, **overrides: Any) -> Any:
    account = account_for(sim, **overrides)
    client = PinpointeClient(account)
    try:
        return AccountFetcher(account, client).fetch_snapshot()
    finally:
        client.close()


def fetch_raw(sim: Simulator, grouping: str = "autoresponder", **overrides: Any) -> Any:
    pages: list[dict[str, Any]] = []
    client = PinpointeClient(account_for(sim, **overrides), max_pages=20)
    try:
        result = client.fetch(grouping, pages.extend)
    finally:
        client.close()
    return result, pages


def test_many_pages_every_record_exactly_once(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=1234))
    snapshot = collect(sim)
    ids = [r.autoresponder_id for r in snapshot.groupings[0].records]
    assert sorted(ids, key=int) == [str(i) for i in range(1, 1235)]
    assert snapshot.pages == 13
    assert sim.request_count("demo") == math.ceil(1234 / 100) == 13
    assert [s["details"]["pagination"]["next"] for s in sim.seen] == list(range(0, 1300, 100))


def test_values_equal_what_the_simulator_serves(simulator: StartSimulator) -> None:
    frozen = 1_780_000_000.0
    sim = simulator(SimAccount(token=TOKEN, autoresponders=3), clock=lambda: frozen)
    record = collect(sim).groupings[0].records[1]
    served = sim.records("demo")[1]
    assert record.autoresponder_name == served["autorespondername"]
    values = dict(record.values)
    assert values["recipients"] == float(served["sendsize"])
    assert values["unique_opens"] == float(served["emailopens_unique"])
    assert values["bounces_hard"] == float(served["bouncecount_hard"])
    assert values["unique_opens"] <= values["opens"] <= values["recipients"]


@pytest.mark.parametrize("request_type", ["Stats", "Autoresponders"])
def test_both_request_types(simulator: StartSimulator, request_type: str) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=5))
    snapshot = collect(sim, request_type=request_type)
    assert snapshot.record_count == 5
    assert {s["requesttype"] for s in sim.seen} == {request_type}


def test_request_body_is_strict_and_minimal(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(token=TOKEN))
    client = PinpointeClient(account_for(sim, page_size=50))
    assert client.request_body("send", Selector(name="Welcome series"), 50) == {
        "username": "demo",
        "usertoken": TOKEN,
        "requesttype": "Stats",
        "requestmethod": "GetAutoresponderResults",
        "details": {
            "grouping": "send",
            "autorespondername": "Welcome series",
            "pagination": {"limit": 50, "next": 50},
        },
    }
    body = PinpointeClient(account_for(sim, page_size=0)).request_body("autoresponder", None, 0)
    assert body["details"] == {"grouping": "autoresponder"}


def test_selection_by_id_and_by_name(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=40))
    by_id = collect(sim, autoresponders=(Selector(id=12),))
    assert [r.autoresponder_id for r in by_id.groupings[0].records] == ["12"]
    assert sim.seen[-1]["details"]["autoresponderid"] == 12
    name = sim.accounts["demo"].autoresponder_name(4)
    by_name = collect(sim, autoresponders=(Selector(name=name),))
    assert [r.autoresponder_name for r in by_name.groupings[0].records] == [name]
    assert sim.seen[-1]["details"]["autorespondername"] == name


def test_many_selected_autoresponders_are_fetched_with_one_all_request(
    simulator: StartSimulator,
) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=60))
    wanted = tuple(Selector(id=i) for i in (3, 5, 8, 13, 21))
    snapshot = collect(sim, autoresponders=wanted)
    assert [r.autoresponder_id for r in snapshot.groupings[0].records] == [
        "3",
        "5",
        "8",
        "13",
        "21",
    ]
    assert sim.request_count("demo") == 1


def test_send_grouping_keeps_the_newest_sends(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=4, sends_per_autoresponder=6))
    snapshot = collect(sim, groupings=("autoresponder", "send"), max_sends_per_autoresponder=2)
    autoresponders, sends = snapshot.groupings
    assert len(autoresponders.records) == 4
    assert len(sends.records) == 8
    newest = sorted(
        (r for r in sim.records("demo", "send") if r["autoresponderid"] == "1"),
        key=lambda r: int(r["starttime"]),
    )[-2:]
    kept = [r.send_id for r in sends.records if r.autoresponder_id == "1"]
    assert sorted(kept) == sorted(r["statid"] for r in newest)
    assert sim.request_count("demo", grouping="send") == 1


@pytest.mark.parametrize("envelope", ["list", "indexed", "item", "single-item", "response"])
@pytest.mark.parametrize("pagination_in", ["top", "data", "response"])
def test_envelope_variants_over_http(
    simulator: StartSimulator, envelope: str, pagination_in: str
) -> None:
    account = SimAccount(
        token=TOKEN, autoresponders=7, envelope=envelope, pagination_in=pagination_in
    )
    sim = simulator(account)
    snapshot = collect(sim, page_size=3)
    assert [r.autoresponder_id for r in snapshot.groupings[0].records] == [
        str(i) for i in range(1, 8)
    ]
    assert snapshot.pages == 3


@pytest.mark.parametrize("as_strings", [True, False])
def test_numbers_as_strings_or_numbers(simulator: StartSimulator, as_strings: bool) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=2, numbers_as_strings=as_strings))
    record = collect(sim).groupings[0].records[0]
    assert dict(record.values)["recipients"] == float(sim.records("demo")[0]["sendsize"])


def test_unmapped_fields_are_reported(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=2, extra_fields={"MobileOpens": 4}))
    assert collect(sim).unmapped_fields == frozenset({"mobileopens", "htmlopens"})
    mapped = collect(sim, field_map=(("mobileopens", "opens"), ("htmlopens", "opens")))
    assert mapped.unmapped_fields == frozenset()


def test_bad_credentials_are_auth_and_never_show_the_token(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(token="the-right-one"))
    with pytest.raises(PollError) as raised:
        collect(sim)
    assert raised.value.reason == "auth"
    assert raised.value.message.startswith(
        "Pinpointe rejected the credentials for account acme (Unable to verify user "
        "credentials): check username and usertoken"
    )
    assert TOKEN not in raised.value.message


class TestPaginationStopRules:
    def test_next_zero_ends(self, simulator: StartSimulator) -> None:
        result, records = fetch_raw(simulator(SimAccount(token=TOKEN, autoresponders=250)))
        assert (result.pages, len(records), result.warnings) == (3, 250, ())

    def test_missing_next_ends(self, simulator: StartSimulator) -> None:
        sim = simulator(SimAccount(token=TOKEN, autoresponders=250))
        sim.set_fault("demo", "no_pagination")
        result, records = fetch_raw(sim)
        assert (result.pages, len(records)) == (1, 100)
        assert result.warnings == (
            "page 1 of grouping autoresponder was full (100 records) but had no "
            "pagination.next; if the account holds more, the server ignores pagination: "
            "set page_size: 0",
        )

    @pytest.mark.parametrize(
        ("fault", "message"),
        [
            ("pagination_repeat", "pagination.next went from 100 to 100"),
            ("pagination_backwards", "pagination.next went from 100 to 99"),
        ],
    )
    def test_next_that_does_not_move_forward_fails(
        self, simulator: StartSimulator, fault: str, message: str
    ) -> None:
        sim = simulator(SimAccount(token=TOKEN, autoresponders=250))
        sim.set_fault("demo", fault)
        with pytest.raises(PollError) as raised:
            fetch_raw(sim)
        assert raised.value.reason == "pagination"
        assert raised.value.message.startswith(message)
        assert sim.request_count("demo") == 2

    def test_short_page_ends_with_a_warning(self, simulator: StartSimulator) -> None:
        sim = simulator(SimAccount(token=TOKEN, autoresponders=250))
        sim.set_fault("demo", "short_pages")
        result, records = fetch_raw(sim)
        assert (result.pages, len(records)) == (1, 99)
        assert result.warnings == (
            "page 1 of grouping autoresponder held 99 records, fewer than page_size 100, "
            "yet pagination.next was 99; treated it as the last page",
        )

    def test_hard_page_cap_fails(self, simulator: StartSimulator) -> None:
        sim = simulator(SimAccount(token=TOKEN, autoresponders=250))
        sim.set_fault("demo", "pagination_endless")
        with pytest.raises(PollError) as raised:
            fetch_raw(sim)
        assert raised.value.reason == "pagination"
        assert raised.value.message.startswith("pagination did not end after 20 pages")
        assert sim.request_count("demo") == 20


def test_redirects_are_not_followed_with_the_token() -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(308)
        handler.send_header("Location", "https://elsewhere.invalid/apijson.php")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    error = poll_odd_server(redirect)
    assert error.reason == "http"
    assert error.message.endswith(
        "redirects (HTTP 308) to https://elsewhere.invalid/apijson.php; "
        "set api_url to the final URL"
    )


def test_a_trickling_body_times_out_as_a_whole() -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        # The headers at once, then a body that never ends: only the timeout ends it.
        handler.send_response(200)
        handler.send_header("Content-Length", str(1 << 20))
        handler.end_headers()
        trickle_until_the_client_leaves(handler, b'{"status": "SUCCESS", "data": [')

    # 5 s: the headers, sent at once, are meant to arrive within it however loaded the
    # machine is; the body, never.
    error = poll_odd_server(trickle, timeout=5)
    assert error.reason == "timeout"
    assert error.message.endswith(
        "did not finish sending the response within 5s (timeout, for page 1 of grouping "
        "autoresponder); raise timeout or check the server"
    )


def trickle_until_the_client_leaves(handler: BaseHTTPRequestHandler, start: bytes) -> None:
    """``start``, then spaces, one byte every tenth of a second until the client hangs up."""
    for byte in itertools.chain(start, itertools.repeat(ord(" "))):
        try:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
        except OSError:
            return
        time.sleep(0.1)


def test_field_names_that_are_not_valid_utf8_are_cleaned(simulator: StartSimulator) -> None:
    sim = simulator(SimAccount(token=TOKEN, autoresponders=2, extra_fields={"\ud800x": 7}))
    assert collect(sim).unmapped_fields == frozenset({"?x", "htmlopens"})


def _answer(status: int, headers: dict[str, str]) -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        body = b'{"status": "FAILED", "errormessage": "later"}'
        handler.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        (
            429,
            "rate_limited",
            "Pinpointe is rate limiting account acme; waiting 3600s (Retry-After asked for "
            "1000000000s; capped); consider a longer poll_interval",
        ),
        (
            503,
            "http",
            "Pinpointe answered HTTP 503; waiting 3600s (Retry-After asked for 1000000000s; "
            "capped)",
        ),
    ],
)
def test_a_huge_retry_after_is_capped_and_only_429_is_rate_limiting(
    status: int, reason: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = poll_odd_server(_answer(status, {"Retry-After": "1000000000"}))
    assert (error.reason, error.retry_after) == (reason, 3600.0)
    assert error.message == message
    capped = [r for r in caplog.records if r.getMessage().startswith("Retry-After capped")]
    assert len(capped) == 1
    assert capped[0].fields == {  # type: ignore[attr-defined]
        "account": "acme",
        "retry_after_seconds": 1_000_000_000,
        "waiting_seconds": 3600,
    }


def test_trickled_headers_time_out_within_timeout() -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        # Headers that never end: only the timeout ends them.
        trickle_until_the_client_leaves(handler, b"HTTP/1.1 200 OK\r\nX-Slow: ")

    error = poll_odd_server(trickle, timeout=1)
    assert error.reason == "timeout"
    assert "within 1s (timeout: the status line and headers for page 1 of grouping " in (
        error.message
    )


def test_an_inline_retry_wait_past_poll_timeout_ends_the_poll() -> None:
    served: list[int] = []

    def unavailable(handler: BaseHTTPRequestHandler) -> None:
        served.append(1)
        _answer(503, {"Retry-After": "10"})(handler)

    # The first answer comes well within poll_timeout; waiting 10 s more would not.
    error = poll_odd_server(unavailable, poll_timeout=9)
    # Without the poll deadline urllib3 would wait 10 s three times and then say "http".
    assert error.reason == "timeout"
    assert error.message.startswith(
        "the poll of account acme did not finish within poll_timeout (9s)"
    )
    assert served == [1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("api_url", "message"),
    [
        (
            f"http://127.0.0.1:{closed_port()}/apijson.php",
            "cannot connect to http://127.0.0.1:{port}/apijson.php ([Errno 111] Connection "
            "refused); check the host and port in api_url, that the server is up, and any "
            "firewall or proxy on the way",
        ),
        (
            "http://pinpointe-exporter-test.invalid/apijson.php",
            "the host name pinpointe-exporter-test.invalid of "
            "http://pinpointe-exporter-test.invalid/apijson.php does not resolve",
        ),
    ],
    ids=["refused", "unresolvable"],
)
def test_a_refused_or_unresolvable_host_is_a_connection_error_not_a_timeout(
    simulator: StartSimulator, api_url: str, message: str
) -> None:
    sim = simulator(SimAccount(token=TOKEN))
    account = account_for(sim, api_url=api_url, timeout=30)
    attempts: list[str] = []
    client = PinpointeClient(account, on_request=attempts.append)
    try:
        with pytest.raises(PollError) as raised:
            client.fetch("autoresponder", lambda records: None)
    finally:
        client.close()
    assert raised.value.reason == "connection"
    port = api_url.split(":")[2].split("/")[0] if api_url.count(":") == 2 else ""
    assert raised.value.message.startswith(message.format(port=port)), raised.value.message
    assert "timeout" not in raised.value.message
    assert attempts == ["error"] * 4  # the first attempt and 3 retries, as for any connect error


def test_a_ca_file_swapped_for_a_fifo_fails_the_poll_at_once(
    simulator: StartSimulator, tmp_path: Path
) -> None:
    """OpenSSL would open the FIFO and wait for a writer forever, holding the poll slot."""
    sim = simulator(SimAccount(token=TOKEN))
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    client = PinpointeClient(account_for(sim, ca_file=str(fifo)))
    try:
        with pytest.raises(PollError) as raised:
            client.fetch("autoresponder", lambda records: None)
    finally:
        client.close()
    assert raised.value.reason == "connection"
    assert raised.value.message.startswith(f"ca_file {fifo} is a FIFO (named pipe)")
    assert sim.request_count("demo") == 0
