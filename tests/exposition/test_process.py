"""The client library's process/python metrics: rendered at most once per MAX_AGE."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from exporter.exposition.process import MAX_AGE, RuntimeMetrics, runtime_metrics
from tests.conftest import metric_families, openmetrics_families


def counting_registry() -> tuple[CollectorRegistry, Gauge]:
    registry = CollectorRegistry()
    renders = Gauge("renders", "A figure that changes between renderings.", registry=registry)
    return registry, renders


def test_a_rendering_is_reused_until_it_is_max_age_old() -> None:
    registry, counter = counting_registry()
    now = [100.0]
    runtime = RuntimeMetrics(registry, max_age=1.0, clock=lambda: now[0])
    first = runtime(False)
    assert b"renders 0.0\n" in first
    counter.inc()
    now[0] += 0.999
    assert runtime(False) is first
    now[0] += 0.001
    again = runtime(False)
    assert again is not first
    assert b"renders 1.0\n" in again


def test_each_format_has_its_own_rendering() -> None:
    registry, _ = counting_registry()
    runtime = RuntimeMetrics(registry, clock=lambda: 5.0)
    text, openmetrics = runtime(False), runtime(True)
    assert [f.name for f in metric_families(text.decode())] == ["renders"]
    assert [f.name for f in openmetrics_families(openmetrics.decode())] == ["renders"]
    assert openmetrics.endswith(b"# EOF\n") and not text.endswith(b"# EOF\n")
    assert runtime(True) is openmetrics and runtime(False) is text


def test_the_default_serves_the_process_metrics_of_the_global_registry() -> None:
    assert MAX_AGE == 1.0
    names = {f.name for f in metric_families(runtime_metrics(False).decode())}
    assert {"python_info", "python_gc_objects_collected"} <= names
    assert "process_cpu_seconds" in names  # Linux: the tests run there
