"""The published state of every account, and the exposition rendered from it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from exporter.exposition.render import Chunks, Exposition


class Publisher(Protocol):
    """Where an account's poller publishes its samples (the Store, or a gate in front of it)."""

    def update(
        self,
        account: str,
        health: Chunks,
        engagement: Chunks | None = None,
        attempted: bool = True,
    ) -> None: ...


class Store:
    """Holds each account's rendered samples and swaps in a new Exposition on every change.

    Readers take ``exposition`` without a lock: it is an immutable object replaced whole.
    ``generation`` grows on every change, so views of the state (the status page) can be
    rendered again only when something changed.
    """

    def __init__(self, accounts: Iterable[str]) -> None:
        self._order = list(accounts)
        self._engagement: dict[str, Chunks] = {name: {} for name in self._order}
        self._health: dict[str, Chunks] = {name: {} for name in self._order}
        self._process: Chunks = {}
        self._attempted: set[str] = set()
        self._lock = threading.Lock()
        self.generation = 0
        self.exposition = Exposition([])

    def update(
        self,
        account: str,
        health: Chunks,
        engagement: Chunks | None = None,
        attempted: bool = True,
    ) -> None:
        """Publish an account's health samples, and its engagement samples when given."""
        with self._lock:
            if account not in self._health:
                return  # removed by a reload while its last poll was in flight
            self._health[account] = health
            if engagement is not None:
                self._engagement[account] = engagement
            if attempted:
                self._attempted.add(account)
            self._publish()

    def set_accounts(self, accounts: Iterable[str]) -> None:
        """Serve these accounts in this order: new ones start empty, the others keep their
        samples, and removed ones disappear from the exposition at once."""
        with self._lock:
            self._order = list(accounts)
            for table in (self._engagement, self._health):
                kept = {name: table.get(name, {}) for name in self._order}
                table.clear()
                table.update(kept)
            self._attempted &= set(self._order)
            self._publish()

    def set_process(self, chunks: Chunks) -> None:
        """Publish some of the exporter's own samples (one series each, not per account),
        replacing those of the same families."""
        with self._lock:
            self._process = {**self._process, **chunks}
            self._publish()

    def _publish(self) -> None:
        merged = [{**self._engagement[n], **self._health[n]} for n in self._order]
        self.exposition = Exposition([*merged, self._process])
        self.generation += 1

    def pending(self) -> list[str]:
        return [name for name in self._order if name not in self._attempted]
