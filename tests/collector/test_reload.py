"""The Reloader in-process, with a loader that never returns: the reload is cut at its
bound, later ones fail at once while it is blocked, and triggers are folded together."""

from __future__ import annotations

import threading

from exporter.collector import Fleet, Reloader
from exporter.collector.reload import RELOAD_BUSY
from exporter.config import Settings
from exporter.exposition import Store
from tests.conftest import (
    PATIENCE,
    wait_for,
)


class BlockingLoader:
    """A configuration loader that blocks until released, counting its calls."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.loads: list[int] = []

    def __call__(self) -> Settings:
        self.loads.append(1)
        self.release.wait()
        return Settings(accounts=())


def test_a_load_that_never_returns_is_cut_and_triggers_are_folded() -> None:
    """In-process, with a loader that blocks until released: the reload fails at its
    bound, the next ones fail at once while it is still blocked, a storm of requests is
    folded into a few reloads, and no thread is left per request."""
    loader = BlockingLoader()
    loads, release = loader.loads, loader.release
    store = Store(())
    reloader = Reloader(loader, Fleet(store, 1), store, timeout=0.5)
    threads_before = threading.active_count()
    applied, message = reloader.reload("test")
    assert not applied and message == (
        "the configuration did not load within 0.5s (a file it reads does not answer, or is "
        "too large to read in time)"
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


def test_only_one_caller_waits_and_the_others_are_folded_at_once() -> None:
    """Callers that give up (an abandoned POST /-/reload) cannot pile up waiting: while
    one waits for a reload, the others are answered at once and folded into it."""
    loader = BlockingLoader()
    loads, release = loader.loads, loader.release
    store = Store(())
    reloader = Reloader(loader, Fleet(store, 1), store, timeout=PATIENCE)
    outcomes: list[tuple[bool | None, str]] = []
    waiter = threading.Thread(target=lambda: outcomes.append(reloader.reload("first")))
    waiter.start()
    wait_for(lambda: loads, what="the first reload to start loading")
    answers = [reloader.reload("http") for _ in range(50)]
    assert answers == [(None, RELOAD_BUSY)] * 50
    release.set()
    waiter.join(PATIENCE)
    assert outcomes and outcomes[0][0] is True
    wait_for(lambda: len(loads) == 2, what="the 50 folded requests' one follow-up reload")
    assert reloader.reload("after") == (
        True,
        "configuration reloaded: added none; removed none; changed none; unchanged none",
    )
