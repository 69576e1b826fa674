"""The polling threads of the configured accounts, started, kept or stopped one by one.

Applying a configuration (at start or on reload) is done account by account. An
unchanged account keeps its poller, its published data, its health series and its
schedule (no extra request to Pinpointe); an added account starts polling; a removed
account's series disappear at once; a changed account gets a new poller that keeps
serving the previous data and counters until its first poll completes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from exporter.collector.poller import AccountPoller
from exporter.config import AccountConfig
from exporter.exposition import Chunks, Store


class Slots(threading.Semaphore):
    """The poll slots shared by all accounts (max_concurrency), resizable by a reload.

    Shrinking never interrupts a poll: slots in use beyond the new size are simply not
    handed out again until enough polls have ended.
    """

    def __init__(self, size: int) -> None:
        super().__init__(size)  # unused, but keeps the base class whole (its repr)
        self._size = size
        self._used = 0
        self._slots_changed = threading.Condition()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        with self._slots_changed:
            if not blocking:
                timeout = 0.0
            if not self._slots_changed.wait_for(lambda: self._used < self._size, timeout):
                return False
            self._used += 1
            return True

    def release(self, n: int = 1) -> None:
        with self._slots_changed:
            self._used -= n
            self._slots_changed.notify_all()

    def resize(self, size: int) -> None:
        with self._slots_changed:
            self._size = size
            self._slots_changed.notify_all()


class _Gate:
    """The store as one poller sees it. Held while the poller is set up, so only its
    final state is published (a restarted account's counters never show a reset);
    closed when the poller is retired, so a poll still in flight can neither publish
    over its successor nor revive a removed account."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._state = "held"
        self._held: tuple[str, Chunks, Chunks | None, bool] | None = None
        self._lock = threading.Lock()

    def update(
        self,
        account: str,
        health: Chunks,
        engagement: Chunks | None = None,
        attempted: bool = True,
    ) -> None:
        with self._lock:
            if self._state == "open":
                self._store.update(account, health, engagement, attempted)
            elif self._state == "held":
                self._held = (account, health, engagement, attempted)

    def release(self) -> None:
        """Publish the last update made while held, and every one from now on."""
        with self._lock:
            self._state = "open"
            if self._held is not None:
                self._store.update(*self._held)
                self._held = None

    def close(self) -> None:
        with self._lock:
            self._state = "closed"
            self._held = None


@dataclass
class _Running:
    poller: AccountPoller
    gate: _Gate
    stop: threading.Event
    thread: threading.Thread


@dataclass(frozen=True)
class Changes:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [
            f"{label} {', '.join(names) if names else 'none'}"
            for label, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
                ("unchanged", self.unchanged),
            )
        ]
        return "; ".join(parts)


class Fleet:
    """One polling thread per account, started, kept or stopped account by account."""

    def __init__(self, store: Store, max_concurrency: int) -> None:
        self.store = store
        self.slots = Slots(max_concurrency)
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()

    def pollers(self) -> list[AccountPoller]:
        """The current pollers, in configuration order."""
        with self._lock:
            return [running.poller for running in self._running.values()]

    def apply(self, accounts: tuple[AccountConfig, ...], max_concurrency: int) -> Changes:
        with self._lock:
            wanted = {account.name: account for account in accounts}
            removed = tuple(name for name in self._running if name not in wanted)
            for name in removed:
                self._retire(name)
            self.store.set_accounts(wanted)
            added: list[str] = []
            changed: list[str] = []
            unchanged: list[str] = []
            running: dict[str, _Running] = {}
            for account in accounts:
                current = self._running.get(account.name)
                if current is not None and current.poller.account == account:
                    unchanged.append(account.name)
                    running[account.name] = current
                    continue
                if current is None:
                    added.append(account.name)
                else:
                    changed.append(account.name)
                    self._retire(account.name)
                running[account.name] = self._start(
                    account, current.poller if current is not None else None
                )
            self._running = running
            self.slots.resize(max_concurrency)
            return Changes(tuple(added), removed, tuple(changed), tuple(unchanged))

    def _start(self, account: AccountConfig, previous: AccountPoller | None) -> _Running:
        gate = _Gate(self.store)
        stop = threading.Event()
        poller = AccountPoller(account, gate, self.slots, stop)
        if previous is not None:
            poller.inherit(previous)
        gate.release()
        thread = threading.Thread(target=poller.run, name=f"poll-{account.name}", daemon=True)
        thread.start()
        return _Running(poller, gate, stop, thread)

    def _retire(self, name: str) -> None:
        running = self._running.pop(name)
        running.gate.close()
        running.stop.set()

    def shutdown(self, timeout: float = 4.0) -> None:
        with self._lock:
            stopping = list(self._running.values())
            for running in stopping:
                running.stop.set()
        deadline = time.monotonic() + timeout
        for running in stopping:
            running.thread.join(max(0.0, deadline - time.monotonic()))
