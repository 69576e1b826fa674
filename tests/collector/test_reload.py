"""The Reloader in-process, with a loader that never returns: the reload is cut at its
bound, later ones fail at once while it is blocked, and triggers are folded together."""

from __future__ import annotations

import threading

from exporter.collector import Fleet, Reloader
from exporter.config import Settings
from exporter.exposition import Store
from tests.conftest import (
    wait_for,
)


def test_a_load_that_never_returns_is_cut_and_triggers_are_folded() -> None:
    """In-process, with a loader that blocks until released: the reload fails at its
    bound, the next ones fail at once while it is still blocked, a storm of requests is
    folded into a few reloads, and no thread is left per request."""
    release = threading.Event()
    loads: list[int] = []

    def load() -> Settings:
        loads.append(1)
        release.wait()
        return Settings(accounts=())

    store = Store(())
    reloader = Reloader(load, Fleet(store, 1), store, timeout=0.5)
    threads_before = threading.active_count()
    applied, message = reloader.reload("test")
    assert not applied and message == (
        "the configuration did not load within 0.5s (a file it reads does not answer)"
    )
    assert reloader.state()[0] is False
    tickets = [reloader.request("storm") for _ in range(200)]
    applied, message = reloader.reload("test")
    assert not applied and "is still loading the configuration" in message
    assert tickets[-1] == tickets[0] + 199
    assert len(loads) == 1  # nothing else started while the first load is blocked
    assert threading.active_count() <= threads_before + 1  # the blocked loader
    release.set()
    wait_for(lambda: threading.active_count() <= threads_before, what="the loader to return")
    applied, message = reloader.reload("test")
    assert applied, message
    assert len(loads) == 2
    assert reloader.state() == (True, reloader.last_success, None)
