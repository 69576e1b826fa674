"""The status page (``/``), its JSON (``/api/v1/status``) and the configuration in force.

The page answers "what is wrong?" at a glance: one row per account with its health,
last success, last failure (with the same message as the log line), records, next
poll, time left before its data goes stale, unmapped fields and selection. It is
server-rendered HTML and CSS (no JavaScript, nothing fetched from elsewhere), every
value escaped. Views are rendered when the state changes (at most once a second, for
the ages they show) and served as bytes; /metrics never waits for them.
"""

from __future__ import annotations

import importlib.metadata
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from exporter import __version__
from exporter.collector import AccountPoller
from exporter.config import (
    AccountConfig,
    FileSecret,
    Secret,
    Selector,
    Settings,
    format_duration,
)
from exporter.config.keys import key_fields
from exporter.config.secret import redacted_url
from exporter.logs import REDACTED
from exporter.statuspage import render_html as render_html  # re-exported
from exporter.web import Reply, Route

HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Failure:
    timestamp: float
    reason: str
    message: str


@dataclass(frozen=True)
class AccountStatus:
    """What the status page says about one account (times are Unix seconds)."""

    name: str
    health: str  # up | down | stale | never_polled
    api_url: str
    request_type: str
    groupings: tuple[str, ...]
    selection: tuple[str, ...]  # empty: all autoresponders
    poll_interval_seconds: float
    last_success_timestamp: float | None
    last_failure: Failure | None
    records: Mapping[str, int]
    pages: int | None
    poll_duration_seconds: float | None
    next_poll_timestamp: float | None
    stale_at_timestamp: float | None
    unmapped_fields: tuple[str, ...]
    hints: tuple[str, ...]


def account_status(poller: AccountPoller) -> AccountStatus:
    """A consistent-enough reading of a poller's state (plain attribute reads, no lock)."""
    account = poller.account
    wall, monotonic = poller.clock.wall(), poller.clock.monotonic()

    def to_wall(moment: float | None) -> float | None:
        return None if moment is None else wall + (moment - monotonic)

    published = poller.published
    if poller.last_ok is None:
        health = "never_polled"
    elif poller.last_ok:
        health = "up"
    else:
        health = "down" if published is not None or poller.last_success is None else "stale"
    stale_at = None
    if published is not None and poller.last_success_monotonic is not None:
        stale_at = to_wall(poller.last_success_monotonic + account.stale_after)
    failure = poller.last_failure
    return AccountStatus(
        name=account.name,
        health=health,
        api_url=account.shown_url,
        request_type=poller.client.request_type,
        groupings=account.groupings,
        selection=tuple(s.describe() for s in account.autoresponders),
        poll_interval_seconds=account.poll_interval,
        last_success_timestamp=poller.last_success,
        last_failure=None if failure is None else Failure(*failure),
        records=dict(published.records) if published else {},
        pages=poller.last_pages,
        poll_duration_seconds=poller.last_duration,
        next_poll_timestamp=to_wall(poller.next_poll),
        stale_at_timestamp=stale_at,
        unmapped_fields=tuple(sorted(published.unmapped_fields)) if published else (),
        hints=poller.diagnosis.hints,
    )


@dataclass(frozen=True)
class Facts:
    """Everything the views show, as of ``now``."""

    now: float
    demo: bool
    config_file: str | None
    reload_successful: bool
    last_reload_success_timestamp: float
    reload_error: str | None  # why the last reload failed, while it is the last
    accounts: tuple[AccountStatus, ...]


class StatusViews:
    """Renders the views of the exporter's state and caches them until it changes."""

    def __init__(
        self,
        pollers: Callable[[], list[AccountPoller]],
        generation: Callable[[], int],
        reload_state: Callable[[], tuple[bool, float, str | None]],
        settings: Callable[[], Settings],
        telemetry_path: str = "/metrics",
        demo: bool = False,
        config_file: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pollers = pollers
        self._generation = generation
        self._reload_state = reload_state
        self._settings = settings
        self.telemetry_path = telemetry_path
        self.demo = demo
        self.config_file = config_file
        self.clock = clock
        self.renders = 0
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._views: dict[str, bytes] = {}

    def facts(self) -> Facts:
        successful, last_success, error = self._reload_state()
        return Facts(
            now=self.clock(),
            demo=self.demo,
            config_file=self.config_file,
            reload_successful=successful,
            last_reload_success_timestamp=last_success,
            reload_error=error,
            accounts=tuple(account_status(p) for p in self._pollers()),
        )

    def view(self, name: str) -> bytes:
        """``html`` or ``json``, rendered again only when the state (or the second) changed."""
        key = (self._generation(), int(self.clock()))
        with self._lock:
            if key != self._key:
                facts = self.facts()
                self._views = {
                    "html": render_html(facts, self.telemetry_path).encode(),
                    "json": render_json(facts).encode(),
                }
                self._key = key
                self.renders += 1
            return self._views[name]

    def routes(self) -> dict[str, Route]:
        def page(method: str) -> Reply:
            return Reply(200, self.view("html"), HTML_TYPE)

        def api(method: str) -> Reply:
            return Reply(200, self.view("json"), JSON_TYPE)

        def config(method: str) -> Reply:
            return Reply(200, render_config(self._settings()).encode(), TEXT_TYPE)

        def troubleshooting(method: str) -> Reply:
            return Reply(200, troubleshooting_text().encode(), TEXT_TYPE)

        return {
            "/": Route(("GET",), page),
            "/api/v1/status": Route(("GET",), api),
            "/config": Route(("GET",), config),
            "/troubleshooting": Route(("GET",), troubleshooting),
        }


# -- JSON ----------------------------------------------------------------------------
def render_json(facts: Facts) -> str:
    return json.dumps(
        {
            "version": __version__,
            "demo": facts.demo,
            "time": facts.now,
            "config": {
                "file": facts.config_file,
                "last_reload_successful": facts.reload_successful,
                "last_reload_success_timestamp": facts.last_reload_success_timestamp,
                "last_reload_error": facts.reload_error,
            },
            "accounts": [
                {
                    **asdict(a),
                    "groupings": list(a.groupings),
                    "selection": list(a.selection),
                    "unmapped_fields": list(a.unmapped_fields),
                    "hints": list(a.hints),
                }
                for a in facts.accounts
            ],
        },
        indent=2,
    )


# -- the configuration in force ------------------------------------------------------
def render_config(settings: Settings) -> str:
    """The running configuration as YAML, every key with the value in force (a key that
    is unset and has no default, such as poll_timeout, is left out); secrets redacted."""
    return "# The configuration in force; secrets are redacted.\n" + yaml.safe_dump(
        _config_document(settings), sort_keys=False, allow_unicode=True
    )


def _config_document(settings: Settings | AccountConfig) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name in key_fields(type(settings)):
        value = getattr(settings, name)
        if isinstance(value, Secret):
            document.update(_token(value))
        elif name == "api_url":
            document[name] = redacted_url(value)
        elif name == "field_map":
            document[name] = dict(value)
        elif value is not None:
            document[name] = _yaml_value(value)
    return document


def _yaml_value(value: Any) -> Any:
    if isinstance(value, float):  # every float setting is a duration
        return format_duration(value)
    if isinstance(value, Selector):
        return {"id": value.id} if value.id is not None else {"name": value.name}
    if isinstance(value, AccountConfig):
        return _config_document(value)
    if isinstance(value, tuple):
        return [_yaml_value(item) for item in value]
    return value


def _token(token: Secret) -> dict[str, str]:
    if isinstance(token, FileSecret):
        return {"usertoken_file": str(token.path)}
    return {"usertoken": REDACTED}


def troubleshooting_text() -> str:
    """The README's Troubleshooting section, from the installed package's metadata."""
    try:
        readme = importlib.metadata.metadata("pinpointe-exporter").get_payload()  # type: ignore[attr-defined]
    except importlib.metadata.PackageNotFoundError:
        readme = ""
    if isinstance(readme, str) and "## Troubleshooting" in readme:
        return "## Troubleshooting" + readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    return "See the Troubleshooting section of README.md.\n"
