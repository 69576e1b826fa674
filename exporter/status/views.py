"""The status page (``/``), its JSON (``/api/v1/status``), the configuration in force
(``/config``) and the troubleshooting guide (``/troubleshooting``).

The page answers "what is wrong?" at a glance: one row per account with its health,
last success, last failure (with the same message as the log line), records, next
poll, time left before its data goes stale, unmapped fields and selection. Views are
rendered when the state changes (at most once a second, for the ages they show) and
served as bytes; /metrics never waits for them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from exporter import __version__
from exporter.collector import AccountPoller
from exporter.config import Settings
from exporter.status.config import render_config
from exporter.status.html import render_html
from exporter.status.model import Facts, account_status
from exporter.status.troubleshooting import troubleshooting_page

HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Page:
    """A view as the web layer serves it: its content type and its current bytes."""

    content_type: str
    body: Callable[[], bytes]


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

    def pages(self) -> dict[str, Page]:
        """Every view by path, for the web layer to serve."""
        return {
            "/": Page(HTML_TYPE, lambda: self.view("html")),
            "/api/v1/status": Page(JSON_TYPE, lambda: self.view("json")),
            "/config": Page(TEXT_TYPE, lambda: render_config(self._settings()).encode()),
            "/troubleshooting": Page(HTML_TYPE, troubleshooting_page),
        }


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
