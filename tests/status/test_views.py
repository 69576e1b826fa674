"""The status views in-process: rendered text, escaping, caching, /config, Markdown."""

from __future__ import annotations

import html
import json

import yaml

from exporter.config import AccountConfig, Settings, parse_config
from exporter.config.keys import allowed_keys
from exporter.status import (
    AccountStatus,
    Facts,
    Failure,
    StatusViews,
    render_config,
    render_html,
    render_markdown,
)

NASTY = "<script>alert('x')</script> & \"quoted\""


def nasty_status(name: str = NASTY) -> AccountStatus:
    return AccountStatus(
        name=name,
        health="down",
        api_url=f"https://example.com/apijson.php?q={NASTY}",
        request_type="Stats",
        groupings=("autoresponder",),
        selection=(f"name={NASTY}",),
        poll_interval_seconds=300,
        last_success_timestamp=None,
        last_failure=Failure(1_780_000_000, "api_failed", f"Pinpointe refused: {NASTY}"),
        records={},
        pages=None,
        poll_duration_seconds=0.5,
        next_poll_timestamp=1_780_000_060,
        stale_at_timestamp=None,
        unmapped_fields=(NASTY,),
        hints=(f"hint about {NASTY}",),
    )


def test_every_value_is_html_escaped() -> None:
    reload_error = f"c.yaml: accounts[0].name: {NASTY}"
    facts = Facts(
        1_780_000_030, True, "c.yaml", False, 1_780_000_000, reload_error, (nasty_status(),)
    )
    page = render_html(facts, "/metrics")
    assert "<script" not in page
    assert "'x'" not in page and '"quoted"' not in page
    escaped = html.escape(NASTY, quote=True)
    # name, URL, selection, failure message, unmapped field, hint, the reload's error
    assert page.count(escaped) == 7, page
    assert "The last configuration reload failed" in page
    assert "Demo mode: this page shows SIMULATED Pinpointe data" in page
    assert "30s ago" in page and "in 30s" in page


def test_views_are_rendered_on_change_not_per_request() -> None:
    generation = [1]
    now = [1_780_000_000.2]
    views = StatusViews(
        lambda: [],
        lambda: generation[0],
        lambda: (True, 1_780_000_000.0, None),
        lambda: Settings(accounts=()),
        clock=lambda: now[0],
    )
    for _ in range(100):
        views.view("html")
        views.view("json")
    assert views.renders == 1
    generation[0] += 1
    views.view("html")
    assert views.renders == 2
    now[0] += 0.5  # same second: the ages shown are still right
    views.view("json")
    assert views.renders == 2
    now[0] += 1
    views.view("html")
    assert views.renders == 3
    assert json.loads(views.view("json"))["accounts"] == []


def test_the_config_page_is_the_configuration_in_force() -> None:
    """/config lists every key the running configuration set, and reads back as the same
    configuration once the redacted token is put back."""
    text = """
poll_interval: 1m30s
timeout: 10s
stale_after: 1h
max_concurrency: 2
poll_timeout: 4m
max_record_size: 8KiB
max_page_size: 2MiB
max_label_length: 200
accounts:
  - name: acme
    api_url: https://127.0.0.1:8080/apijson.php
    username: u
    usertoken: tok-config-page-7d1
    request_type: Autoresponders
    groupings: [send, autoresponder]
    page_size: 0
    autoresponders: [{id: 12}, {name: "Welcome series"}]
    max_sends_per_autoresponder: 3
    field_map: {SpamCount: complaints}
    poll_interval: 10m
    ca_file: /etc/ssl/certs/ca-certificates.crt
    tls_insecure_skip_verify: true
"""
    settings = parse_config(text, "config.yaml", {})
    shown = render_config(settings)
    assert "tok-config-page-7d1" not in shown
    document = yaml.safe_load(shown)
    assert list(document) == list(allowed_keys(Settings))
    assert list(document["accounts"][0]) == [
        key for key in allowed_keys(AccountConfig) if key != "usertoken_file"
    ]
    assert document["max_record_size"] == 8192 and document["poll_timeout"] == "4m"
    restored = shown.replace("usertoken: <redacted>", "usertoken: tok-config-page-7d1")
    assert parse_config(restored, "config.yaml", {}) == settings


def test_the_markdown_subset_renders_escaped() -> None:
    text = (
        "# T <x>\n\npara **b** `c<d>` [l](https://e/?a=1&b=2)\n\n"
        "- one\n  two\n- three\n\n```\n<raw>\n```\n"
    )
    assert render_markdown(text) == (
        "<h1>T &lt;x&gt;</h1>\n"
        '<p>para <b>b</b> <code>c&lt;d&gt;</code> <a href="https://e/?a=1&amp;b=2">l</a></p>\n'
        "<ul><li>one two</li><li>three</li></ul>\n"
        "<pre><code>&lt;raw&gt;</code></pre>"
    )
