"""The published state of every account, and the exposition rendered from it."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from exporter.metrics import Chunks, Exposition


class Store:
    """Holds each account's rendered samples and swaps in a new Exposition on every change.

    Readers take ``exposition`` without a lock: it is an immutable object replaced whole.
    """

    def __init__(self, accounts: Iterable[str]) -> None:
        self._order = list(accounts)
        self._engagement: dict[str, Chunks] = {name: {} for name in self._order}
        self._health: dict[str, Chunks] = {name: {} for name in self._order}
        self._attempted: set[str] = set()
        self._lock = threading.Lock()
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
            self._health[account] = health
            if engagement is not None:
                self._engagement[account] = engagement
            if attempted:
                self._attempted.add(account)
            merged = [{**self._engagement[n], **self._health[n]} for n in self._order]
            self.exposition = Exposition(merged)

    def pending(self) -> list[str]:
        return [name for name in self._order if name not in self._attempted]
