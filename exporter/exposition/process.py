"""The client library's process_* and python_* metrics, rendered at most once a second.

They describe the exporter's own process (CPU seconds, memory, open files, garbage
collections). Rendering them costs more than writing a whole pre-rendered exposition,
so a scrape reuses the last rendering while it is younger than ``MAX_AGE``: a scrape of
any size then costs about what serving a static file costs, and these figures are at
most a second old. In OpenMetrics this part also carries the closing ``# EOF``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

MAX_AGE = 1.0  # seconds


class RuntimeMetrics:
    """Renders a registry's metrics in either format, reusing each rendering for a while."""

    def __init__(
        self,
        registry: CollectorRegistry = REGISTRY,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.max_age = max_age
        self.clock = clock
        self._rendered: dict[bool, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def __call__(self, openmetrics_format: bool) -> bytes:
        """The same bytes object until it is ``max_age`` old, then a new rendering."""
        cached = self._rendered.get(openmetrics_format)
        if cached is not None and self.clock() - cached[0] < self.max_age:
            return cached[1]
        with self._lock:  # one thread renders; the others wait for its bytes
            cached = self._rendered.get(openmetrics_format)
            if cached is not None and self.clock() - cached[0] < self.max_age:
                return cached[1]
            rendered_at = self.clock()
            if openmetrics_format:
                body = bytes(openmetrics.generate_latest(self.registry))  # type: ignore[no-untyped-call]
            else:
                body = bytes(generate_latest(self.registry))
            self._rendered[openmetrics_format] = (rendered_at, body)
            return body


runtime_metrics = RuntimeMetrics()
