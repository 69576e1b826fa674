"""Every fault Pinpointe can throw, against real exporter processes.

One exporter polls many accounts at once, one account per fault, so the whole matrix
runs in the time of the slowest fault; none of its time bounds is meant to expire. The
faults that only a deadline ends are polled by exporters of their own, whose bound meant
to fire is short and whose other bound is out of reach, however slow the machine.

Accounts whose fault fails the poll live on a simulator whose clock is advanced by a day
once the first snapshot is published: every figure grows, so a partial publish (page 1
new, later pages old) would show. Their faults hit only the pages after the first
(``later_pages``), so each failed poll has already received new data that must not be
published.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from exporter.collector import AccountPoller
from exporter.collector.fields import TRUNCATED
from exporter.exposition import Store
from exporter.pinpointe import MAX_PAGES
from exporter.simulator import SimAccount, Simulator
from exporter.simulator.faults import BAD_VALUES, DUPLICATE_MARKER, ODD_NAMES
from tests.conftest import (
    ExporterProcess,
    Labels,
    account_settings,
    labels,
    parse_samples,
    process_usage,
    promtool_check,
    series,
    spawn_exporter,
    wait_for,
)

TOKEN = "tok-faults-5d0c9e"
FROZEN = 1_780_000_000.0
AUTORESPONDERS = 25
PAGE_SIZE = 10
PAGE_TOO_LARGE = (
    "page 2 of grouping autoresponder is larger than 224KiB (the bound from page_size 10 x "
    "max_record_size 16KiB; raise max_record_size if the records really are that large)"
)


@dataclass(frozen=True)
class Failing:
    fault: str
    reason: str
    log: str  # part of the error log line
    params: tuple[tuple[str, Any], ...] = ()


FAILING = {
    "hang": Failing("hang", "timeout", "no answer from", (("seconds", math.inf),)),
    "reset": Failing("reset", "connection", "Connection reset by peer"),
    "cut_connection": Failing(
        "cut_connection", "connection", "broke while reading the response (IncompleteRead"
    ),
    "http_500": Failing("http_500", "http", "Pinpointe answered HTTP 500 (Internal Server Error)"),
    "http_502": Failing("http_502", "http", "Pinpointe answered HTTP 502 (Bad Gateway)"),
    "http_503": Failing("http_503", "http", "Pinpointe answered HTTP 503 (Service Unavailable)"),
    "rate_limited": Failing(
        "rate_limited",
        "rate_limited",
        "Pinpointe is rate limiting account rate_limited; waiting 1s as asked by Retry-After",
        (("retry_after", 1),),
    ),
    "auth_401": Failing(
        "auth",
        "auth",
        "Pinpointe rejected the credentials for account auth_401 "
        "(Unable to verify user credentials): check username and usertoken",
    ),
    "auth_200": Failing(
        "auth_200",
        "auth",
        "Pinpointe rejected the credentials for account auth_200 "
        "(Unable to verify user credentials): check username and usertoken",
    ),
    "failed_200": Failing(
        "failed_200",
        "api_failed",
        "Pinpointe refused the request: Autoresponder statistics unavailable; check request_type",
    ),
    "errormessage_list": Failing(
        "errormessage_list",
        "api_failed",
        "Pinpointe refused the request: Autoresponder statistics unavailable; "
        "Please try again later; check request_type",
    ),
    "echo_token": Failing("echo_token", "api_failed", '\\"usertoken\\": \\"<redacted>\\"'),
    "malformed_json": Failing(
        "malformed_json", "invalid_response", "a body that is not JSON (truncated or malformed JSON"
    ),
    "html_page": Failing(
        "html_page",
        "invalid_response",
        "a body that is not JSON (an HTML page); check api_url: it should be the apijson.php",
    ),
    "truncated": Failing(
        "truncated", "invalid_response", "a body that is not JSON (truncated or malformed JSON"
    ),
    "pagination_repeat": Failing(
        "pagination_repeat",
        "pagination",
        "pagination.next went from 10 to 10 for grouping autoresponder: the server's pagination "
        "does not move forward",
    ),
    "pagination_backwards": Failing(
        "pagination_backwards", "pagination", "pagination.next went from 10 to 9"
    ),
    # Hostile answers (issue 13): each bounded, each keeping the previous data.
    "gzip_bomb": Failing("gzip_bomb", "invalid_response", PAGE_TOO_LARGE),
    "gzip_gzip_bomb": Failing("gzip_bomb", "invalid_response", PAGE_TOO_LARGE, (("layers", 2),)),
    "object_bomb": Failing("object_bomb", "invalid_response", PAGE_TOO_LARGE),
    "too_many_records": Failing(
        "too_many_records",
        "invalid_response",
        "page 2 of grouping autoresponder held 15 records, more than the 10 asked for "
        "(pagination.limit = page_size)",
    ),
    "trickle_headers": Failing(
        "trickle_headers",
        "timeout",
        "within 2s (timeout: the status line and headers for page 2 of grouping autoresponder "
        "did not arrive in time)",
    ),
    "endless_pages": Failing(
        "pagination_endless",
        "timeout",
        "the poll of account endless_pages did not finish within poll_timeout (5s); it stopped "
        "at page ",
    ),
    "all_invalid": Failing(
        "all_invalid",
        "invalid_response",
        "a page served 10 records and none could be used (record has no autoresponderid or name)",
    ),
    "huge_next": Failing(
        "huge_next",
        "pagination",
        'msg="pagination.next is a 5000-digit number, not a record offset" account=huge_next',
    ),
    "log_injection": Failing(
        "log_injection",
        "api_failed",
        "Pinpointe refused the request: Statistics unavailable\\r\\nlevel=info msg=forged"
        "\\x1b[31m red\\u2028sep\\u2029par\\x85nel\\x9bcsi\\x00nul\\x7fdel; check",
    ),
}

# The bounds of each exporter that polls faults only a deadline ends (the other accounts'
# exporter has none a slow machine could reach: MAIN_BOUNDS).
DEADLINE_EXPORTERS: dict[tuple[str, str], tuple[str, ...]] = {
    # (timeout, poll_timeout) -> accounts
    ("2s", "10m"): ("hang", "trickle_headers"),
    ("10m", "5s"): ("endless_pages",),
}
MAIN_BOUNDS = ("1m", "5m")

# Faults the exporter copes with: account name -> (fault, params, account overrides).
COPING: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "latency": ("latency", {"seconds": 0.3}, {}),
    "short_pages": ("short_pages", {}, {}),
    "no_pagination": ("no_pagination", {}, {}),
    "duplicates": ("duplicates", {}, {}),
    "bad_values": ("bad_values", {}, {}),
    "odd_names": ("odd_names", {}, {}),
    # one 10 MB page; polled rarely so it does not load the machine for the other tests
    "big_response": ("big_response", {}, {"page_size": 1000, "poll_interval": "1m"}),
    "giant_labels": ("giant_labels", {"length": 100_000}, {}),
    "token_in_name": ("token_in_name", {}, {}),
}


DEADLINE_NAMES = {name for names in DEADLINE_EXPORTERS.values() for name in names}


@dataclass
class Fleet:
    exporter: ExporterProcess  # every account but those of DEADLINE_EXPORTERS
    exporters: dict[str, ExporterProcess]  # account -> the exporter that polls it
    processes: list[ExporterProcess]  # every exporter, once
    failing: Simulator
    coping: Simulator
    before: dict[str, dict[tuple[str, Labels], float]]


def engagement_of(samples: dict[tuple[str, Labels], float], account: str) -> dict[Any, float]:
    return {
        key: value
        for key, value in samples.items()
        if key[0].startswith("pinpointe_autoresponder") and ("account", account) in key[1]
    }


def account_samples(handle: ExporterProcess, account: str) -> dict[tuple[str, Labels], float]:
    """The samples of one account only: parsing a few hundred lines, not the whole fleet."""
    response = handle.get()
    assert response.status_code == 200
    needle = f'account="{account}"'
    lines = [line for line in response.text.splitlines() if needle in line and line[0] != "#"]
    return parse_samples("\n".join(lines) + "\n")


def value(samples: dict[tuple[str, Labels], float], name: str, **lbl: str) -> float:
    return samples[(name, labels(**lbl))]


def error_lines(handle: ExporterProcess, account: str, reason: str) -> list[str]:
    return [
        line
        for line in handle.logs().splitlines()
        if f" account={account} " in f"{line} " and f" reason={reason} " in f"{line} "
    ]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    now = [FROZEN]
    failing = Simulator(
        [SimAccount(username=n, token=TOKEN, autoresponders=AUTORESPONDERS) for n in FAILING],
        clock=lambda: now[0],
    ).start()
    coping = Simulator(
        [SimAccount(username=n, token=TOKEN, autoresponders=AUTORESPONDERS) for n in COPING],
        clock=lambda: FROZEN,
    ).start()
    for name, (fault, params, _) in COPING.items():
        coping.set_fault(name, fault, **params)
    accounts = {
        n: {"name": n, "api_url": failing.url, "username": n, "usertoken": TOKEN} for n in FAILING
    } | {
        n: {"name": n, "api_url": coping.url, "username": n, "usertoken": TOKEN, **overrides}
        for n, (_, _, overrides) in COPING.items()
    }
    groups = {MAIN_BOUNDS: tuple(n for n in accounts if n not in DEADLINE_NAMES)}
    directory = tmp_path_factory.mktemp("fleet")
    exporters: dict[str, ExporterProcess] = {}
    processes: list[ExporterProcess] = []
    try:
        for (timeout, poll_timeout), names in (groups | DEADLINE_EXPORTERS).items():
            config = {
                "poll_interval": "1s",
                "timeout": timeout,
                "poll_timeout": poll_timeout,
                "stale_after": "10m",
                "max_page_size": "16MiB",  # for big_response; the other accounts' bound is smaller
                "max_concurrency": len(names),
                "accounts": [{"page_size": PAGE_SIZE, **accounts[n]} for n in names],
            }
            processes.append(spawn_exporter(directory, config))
            exporters |= dict.fromkeys(names, processes[-1])
        wait_for(
            lambda: all(
                account_samples(exporters[n], n).get(("pinpointe_up", labels(account=n))) == 1
                for n in FAILING
            ),
            what="a first successful poll of every account",
        )
        for name, case in FAILING.items():
            failing.set_fault(name, case.fault, later_pages=True, **dict(case.params))
        before = {
            name: engagement_of(account_samples(exporters[name], name), name) for name in FAILING
        }
        now[0] += 86_400  # every figure grows from here on
        yield Fleet(processes[0], exporters, processes, failing, coping, before)
    finally:
        for handle in processes:
            handle.stop()
        failing.stop()
        coping.stop()


@pytest.mark.parametrize("name", list(FAILING))
def test_failing_fault_keeps_the_previous_snapshot(fleet: Fleet, name: str) -> None:
    case = FAILING[name]
    handle = fleet.exporters[name]
    before = fleet.before[name]
    assert len(before) == AUTORESPONDERS * 11

    def failure_logged() -> str | None:
        lines = error_lines(handle, name, case.reason)
        return next((line for line in lines if case.log in line), None)

    line = wait_for(failure_logged, what=f"a failed poll of {name} logging {case.log!r}")
    assert handle.process.poll() is None
    assert handle.get("/-/healthy").status_code == 200
    samples = account_samples(handle, name)
    # The previous snapshot, whole: not one value from the failed poll's first page.
    assert engagement_of(samples, name) == before
    assert value(samples, "pinpointe_up", account=name) == 0
    assert value(samples, "pinpointe_records", account=name, grouping="autoresponder") == 25
    assert "level=error" in line and 'serving="previous data"' in line, line
    assert TOKEN not in handle.logs()


def test_recovery_publishes_the_complete_new_snapshot(fleet: Fleet) -> None:
    """Once the faults stop, each account's next poll publishes every value as served now."""
    for name in FAILING:
        fleet.failing.set_fault(name, None)
    served = {
        name: {r["autoresponderid"]: float(r["emailopens"]) for r in fleet.failing.records(name)}
        for name in FAILING
    }

    def recovered(name: str) -> bool:
        samples = account_samples(fleet.exporters[name], name)
        opens = opens_by_id(samples, name, "pinpointe_autoresponder_opens")
        return value(samples, "pinpointe_up", account=name) == 1 and opens == served[name]

    for name in FAILING:
        wait_for(functools.partial(recovered, name), what=f"{name} to recover")
    for name in FAILING:
        before = fleet.before[name]
        after = engagement_of(account_samples(fleet.exporters[name], name), name)
        assert after.keys() == before.keys()
        assert all(after[k] >= before[k] for k in before)
        assert sum(after.values()) > sum(before.values())


def coping_samples(fleet: Fleet, name: str) -> dict[tuple[str, Labels], float]:
    def polled() -> dict[tuple[str, Labels], float] | None:
        samples = account_samples(fleet.exporter, name)
        return samples if samples.get(("pinpointe_up", labels(account=name))) == 1 else None

    samples: dict[tuple[str, Labels], float] = wait_for(polled, what=f"a poll of {name}")
    return samples


def opens_by_id(
    samples: dict[tuple[str, Labels], float], account: str, metric: str
) -> dict[str, float]:
    return {
        dict(k)["autoresponder_id"]: v
        for k, v in series(samples, metric).items()
        if ("account", account) in k
    }


def test_latency_below_the_timeout_is_only_slow(fleet: Fleet) -> None:
    samples = coping_samples(fleet, "latency")
    served = {r["autoresponderid"]: float(r["sendsize"]) for r in fleet.coping.records("latency")}
    assert opens_by_id(samples, "latency", "pinpointe_autoresponder_recipients") == served
    assert value(samples, "pinpointe_poll_errors_total", account="latency", reason="timeout") == 0


def test_short_page_ends_pagination_with_a_warning(fleet: Fleet) -> None:
    samples = coping_samples(fleet, "short_pages")
    assert value(samples, "pinpointe_records", account="short_pages", grouping="autoresponder") == 9
    assert (
        "page 1 of grouping autoresponder held 9 records, fewer than page_size 10, yet "
        "pagination.next was 9; treated it as the last page"
    ) in fleet.exporter.logs()


def test_missing_pagination_section_ends_pagination(fleet: Fleet) -> None:
    samples = coping_samples(fleet, "no_pagination")
    ids = opens_by_id(samples, "no_pagination", "pinpointe_autoresponder_opens")
    assert sorted(ids, key=int) == [str(i) for i in range(1, 11)]


def test_duplicate_records_are_kept_once_the_first(fleet: Fleet) -> None:
    samples = coping_samples(fleet, "duplicates")
    recipients = opens_by_id(samples, "duplicates", "pinpointe_autoresponder_recipients")
    served = {
        r["autoresponderid"]: float(r["sendsize"]) for r in fleet.coping.records("duplicates")
    }
    # Records 10 and 19 came twice (again at the start of pages 2 and 3, with another
    # sendsize): the first copy is the one published.
    assert recipients == served
    assert DUPLICATE_MARKER not in recipients.values()
    assert value(samples, "pinpointe_records", account="duplicates", grouping="autoresponder") == 25
    assert re.search(
        r'msg="2 duplicate records were served and counted once" account=duplicates',
        fleet.exporter.logs(),
    )


def test_invalid_values_are_skipped_and_counted_never_zero(fleet: Fleet) -> None:
    samples = coping_samples(fleet, "bad_values")
    skipped = value(
        samples, "pinpointe_skipped_values", account="bad_values", grouping="autoresponder"
    )
    assert skipped == 7  # negative, "n/a", NaN, "-3", true, Infinity, an object
    metric_of = {
        "emailopens": "opens",
        "linkclicks": "clicks",
        "emailforwards": "forwards",
        "unsubscribecount": "unsubscribes",
        "sendsize": "recipients",
        "bouncecount_hard": "bounces",
        "bouncecount_soft": "bounces",
        "feedbackloopcount": "complaints",
        "emailopens_unique": "unique_opens",
        "linkclicks_unique": "unique_clicks",
    }
    for position, field, bad in BAD_VALUES:
        lbl: dict[str, str] = {
            "account": "bad_values",
            "autoresponder_id": str(position + 1),
            "autoresponder_name": fleet.coping.accounts["bad_values"].autoresponder_name(position),
        }
        if field.startswith("bouncecount_"):
            lbl["bounce_type"] = field.removeprefix("bouncecount_")
        key = (f"pinpointe_autoresponder_{metric_of[field]}", frozenset(lbl.items()))
        if bad in ("12.5", "1e20"):
            assert samples[key] == float(bad)  # fractional and huge values are numbers
        else:
            assert key not in samples, (field, bad)  # missing or invalid: no sample, never 0
    # the other records are untouched
    assert len(opens_by_id(samples, "bad_values", "pinpointe_autoresponder_opens")) == 24


def test_odd_names_render_valid_exposition(fleet: Fleet) -> None:
    coping_samples(fleet, "odd_names")
    text = fleet.exporter.get().text
    check = promtool_check(text)
    assert check.returncode == 0, check.stderr
    names = {
        dict(k)["autoresponder_id"]: dict(k)["autoresponder_name"]
        for k in series(parse_samples(text), "pinpointe_autoresponder_opens")
        if ("account", "odd_names") in k
    }
    for ar_id, odd in ODD_NAMES.items():
        assert names[str(ar_id)] == odd
    assert '\\"hello\\"' in text and "two\\nlines" in text and "🎉" in text


def test_ten_megabyte_response(fleet: Fleet) -> None:
    samples = coping_samples(fleet, "big_response")
    served = {
        r["autoresponderid"]: float(r["sendsize"]) for r in fleet.coping.records("big_response")
    }
    assert opens_by_id(samples, "big_response", "pinpointe_autoresponder_recipients") == served
    assert fleet.coping.request_count("big_response") >= 1


def test_giant_label_values_are_truncated_and_counted(fleet: Fleet) -> None:
    samples = coping_samples(fleet, "giant_labels")
    names = {
        dict(k)["autoresponder_id"]: dict(k)["autoresponder_name"]
        for k in series(samples, "pinpointe_autoresponder_opens")
        if ("account", "giant_labels") in k
    }
    assert names["1"] == "G" * (1024 - len(TRUNCATED)) + TRUNCATED
    assert len(names) == AUTORESPONDERS
    truncated = ("pinpointe_truncated_label_values", labels(account="giant_labels"))
    assert samples[(truncated[0], truncated[1] | {("grouping", "autoresponder")})] == 1
    assert max(len(line) for line in fleet.exporter.get().text.splitlines()) < 2000
    assert (
        "grouping autoresponder: record '1': autoresponder_name longer than max_label_length "
        "(1024 characters) truncated"
    ) in fleet.exporter.logs()


def test_a_usertoken_in_a_name_is_never_published(fleet: Fleet) -> None:
    samples = coping_samples(fleet, "token_in_name")
    names = [
        dict(k)["autoresponder_name"]
        for k in series(samples, "pinpointe_autoresponder_opens")
        if ("account", "token_in_name") in k
    ]
    assert len(names) == AUTORESPONDERS
    assert all(name.endswith(" for <redacted>") for name in names), names[:3]
    assert TOKEN not in fleet.exporter.get().text


def test_log_lines_stay_single_lines(fleet: Fleet) -> None:
    wait_for(lambda: error_lines(fleet.exporter, "log_injection", "api_failed"))
    logs = fleet.exporter.log_path.read_bytes().decode("utf-8")
    for char in "\r\x1b\u2028\u2029\u0085\x9b\x00\x7f":
        assert char not in logs, repr(char)
    assert all(line.startswith("ts=") for line in logs.splitlines()), "a line was split"


def test_the_exporter_survived_every_fault(fleet: Fleet) -> None:
    for name, case in FAILING.items():
        samples = account_samples(fleet.exporters[name], name)
        errors = ("pinpointe_poll_errors_total", labels(account=name, reason=case.reason))
        assert samples[errors] >= 1, name
    for handle in fleet.processes:
        assert handle.process.poll() is None
        for path in ("/-/healthy", "/-/ready", "/metrics", "/"):
            assert handle.get(path).status_code == 200
        assert promtool_check(handle.get().text).returncode == 0
        assert "Traceback" not in handle.logs()
        # Resource bounds after every bomb, trickle and endless chain, many times over.
        usage = process_usage(handle.process.pid)
        accounts = len(FAILING) + len(COPING)
        assert usage.peak_rss < 512 << 20, usage
        assert usage.threads < 2 * accounts + 20, usage  # a poller and at most a timer each
        assert usage.fds < accounts + 40, usage


def test_endless_pagination_hits_the_page_cap_and_keeps_the_snapshot(
    simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The cap is 10,000 pages; the poller's client gets a cap of 20 to keep this fast."""
    now = [FROZEN]
    sim = simulator(SimAccount(token=TOKEN, autoresponders=25), clock=lambda: now[0])
    account = account_settings(sim, TOKEN, page_size=PAGE_SIZE)
    store = Store(["acme"])
    poller = AccountPoller(account, store, threading.Semaphore(1), threading.Event())
    poller.client.max_pages = 20
    assert MAX_PAGES == 10_000
    try:
        poller.poll_once()
        good = parse_samples(b"".join(store.exposition.parts(False)).decode())
        assert value(good, "pinpointe_up", account="acme") == 1
        sim.set_fault("demo", "pagination_endless")
        sim.reset_counts()
        now[0] += 86_400
        poller.poll_once()
    finally:
        poller.client.close()
    failed = parse_samples(b"".join(store.exposition.parts(False)).decode())
    assert sim.request_count("demo") == 20
    assert value(failed, "pinpointe_up", account="acme") == 0
    assert value(failed, "pinpointe_poll_errors_total", account="acme", reason="pagination") == 1
    assert engagement_of(failed, "acme") == engagement_of(good, "acme")
    assert "pagination did not end after 20 pages" in caplog.text
