"""Configuration reload without a restart: SIGHUP, POST /-/reload and file polling.

A reload is applied account by account. An unchanged account keeps its poller, its
published data, its health series and its schedule (no extra request to Pinpointe);
an added account starts polling; a removed account's series disappear at once; a
changed account gets a new poller that keeps serving the previous data and counters
until its first poll completes. A configuration that does not load changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exporter.config import MAX_CONFIG_FILE_SIZE, AccountConfig, ConfigError, Settings
from exporter.config.files import FileProblem, read_bytes
from exporter.exposition import Chunks, Store, render_reload
from exporter.handler import Reply, Route
from exporter.poller import AccountPoller

log = logging.getLogger("exporter.reload")

LIFECYCLE_DISABLED = (
    "Lifecycle API is not enabled: start pinpointe-exporter with --web.enable-lifecycle "
    "to reload the configuration over HTTP (or send it SIGHUP)"
)


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


# The longest one reload may take to load the configuration; past it the reload fails
# and the running configuration stays.
RELOAD_TIMEOUT = 30.0


class Reloader:
    """Loads the configuration again and applies it; keeps the reload metrics.

    Every trigger (SIGHUP, ``/-/reload``, a changed file) only asks for a reload: one
    thread of its own performs them, one at a time, and every request made while one
    runs is folded into a single follow-up that reads the file as it is then.
    Loading runs on a thread of its own for at most ``timeout`` seconds: a file that
    blocks fails the reload (and every next one fails at once while it is still
    blocked), and the running configuration stays."""

    def __init__(
        self,
        load: Callable[[], Settings],
        fleet: Fleet,
        store: Store,
        source: Path | None = None,
        timeout: float = RELOAD_TIMEOUT,
    ) -> None:
        self._load = load
        self.fleet = fleet
        self.store = store
        self.source = source
        self.timeout = timeout
        self.last_success = 0.0
        self.successful = True
        self.last_error: str | None = None
        self.settings = Settings(accounts=())
        self._checksum = self._file_checksum()
        self._triggers: deque[str] = deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._done = threading.Condition()
        self._requested = 0  # requests with a ticket so far
        self._finished = 0  # every ticket up to this one has had its reload
        self._outcome = (True, "")
        self._blocked: tuple[threading.Thread, float] | None = None
        self._worker = threading.Thread(target=self._work, name="config-reload", daemon=True)
        self._worker.start()

    def start(self, settings: Settings) -> Changes:
        """Apply the configuration loaded at start-up."""
        changes = self.fleet.apply(settings.accounts, settings.max_concurrency)
        self.settings = settings
        self._loaded(True)
        return changes

    # -- asking for a reload ---------------------------------------------------------
    def _wake(self, trigger: str) -> None:
        self._triggers.append(trigger)
        with contextlib.suppress(OSError):  # a full pipe: a reload is pending already
            os.write(self._wake_write, b"!")

    def request(self, trigger: str) -> int:
        """Ask for a reload that starts after this call; returns its ticket."""
        with self._done:
            self._requested += 1
            ticket = self._requested
        self._wake(trigger)
        return ticket

    def reload(self, trigger: str) -> tuple[bool, str]:
        """Ask for a reload and wait for it: (applied, message for the user). Waits for
        the reload running now, if any, then for its own: at most twice ``timeout``."""
        ticket = self.request(trigger)
        with self._done:
            if self._done.wait_for(lambda: self._finished >= ticket, 2 * self.timeout + 1.0):
                return self._outcome
        return False, (
            f"the reload did not finish within {2 * self.timeout + 1.0:g}s; the running "
            "configuration stays until it does"
        )

    # -- performing reloads ------------------------------------------------------------
    def _work(self) -> None:
        waiting = select.poll()
        waiting.register(self._wake_read, select.POLLIN)
        while True:
            waiting.poll()
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_read, 4096):
                    pass
            with self._done:
                ticket = self._requested
            triggers: dict[str, None] = {}
            while self._triggers:
                triggers[self._triggers.popleft()] = None
            try:
                outcome = self._reload(",".join(triggers) or "unknown")
            except Exception as exc:  # the reload thread must outlive any bug
                log.exception("configuration reload failed on an unexpected error: this is a bug")
                outcome = self._failed("reload", f"internal error: {type(exc).__name__}")
            with self._done:
                self._finished = ticket
                self._outcome = outcome
                self._done.notify_all()

    def _reload(self, trigger: str) -> tuple[bool, str]:
        self._checksum = self._file_checksum()
        if self._blocked is not None and self._blocked[0].is_alive():
            return self._failed(
                trigger,
                f"the reload {time.monotonic() - self._blocked[1]:.0f}s ago is still loading "
                "the configuration (a file it reads does not answer)",
            )
        try:
            settings = self._load_within_timeout()
        except ConfigError as exc:
            return self._failed(trigger, str(exc))
        changes = self.fleet.apply(settings.accounts, settings.max_concurrency)
        self.settings = settings
        self._loaded(True)
        message = f"configuration reloaded: {changes.describe()}"
        log.info(message, extra={"fields": {"trigger": trigger}})
        return True, message

    def _load_within_timeout(self) -> Settings:
        loaded: list[Settings | BaseException] = []

        def load() -> None:
            try:
                loaded.append(self._load())
            except BaseException as exc:  # handed to the reload thread
                loaded.append(exc)

        thread = threading.Thread(target=load, name="config-load", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            self._blocked = (thread, time.monotonic())
            raise ConfigError(
                f"the configuration did not load within {self.timeout:g}s (a file it reads "
                "does not answer)"
            )
        (result,) = loaded
        if isinstance(result, ConfigError):
            raise result
        if isinstance(result, BaseException):
            raise ConfigError(f"cannot load the configuration: {type(result).__name__}: {result}")
        return result

    def _failed(self, trigger: str, message: str) -> tuple[bool, str]:
        self.last_error = message
        self._loaded(False)
        log.error(
            f"configuration reload failed, the running configuration stays: {message}",
            extra={"fields": {"trigger": trigger}},
        )
        return False, message

    def state(self) -> tuple[bool, float, str | None]:
        """Whether the last load succeeded, when one last did, and why the last failed."""
        return self.successful, self.last_success, None if self.successful else self.last_error

    def _loaded(self, successful: bool) -> None:
        self.successful = successful
        if successful:
            self.last_success = time.time()
        self.store.set_process(render_reload(successful, self.last_success))

    def _file_checksum(self) -> str | None:
        """The file's content as a digest, or what keeps it from being read (so that a
        file turned unreadable is reloaded, and reported, once); None while it is missing."""
        if self.source is None:
            return None
        try:
            return hashlib.sha256(read_bytes(self.source, MAX_CONFIG_FILE_SIZE)).hexdigest()
        except FileProblem as exc:
            return None if not self.source.exists() else exc.problem

    def watch(self, interval: float, stop: threading.Event) -> threading.Thread:
        """Reload whenever the configuration file's content changes, checked every
        ``interval`` (a Kubernetes ConfigMap update is a symlink swap: the content is
        compared, not the modification time). A broken file is reported once per change."""

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    if self._file_checksum() not in (None, self._checksum):
                        self.request("file changed")
                except Exception:  # the watcher must outlive any bug
                    log.exception("configuration watch failed on an unexpected error")

        thread = threading.Thread(target=loop, name="config-watch", daemon=True)
        thread.start()
        return thread

    def route(self, enabled: bool) -> Route:
        """POST/PUT /-/reload, served only with --web.enable-lifecycle (403 otherwise)."""

        def handle(method: str) -> Reply:
            if not enabled:
                return Reply(403, f"{LIFECYCLE_DISABLED}\n".encode())
            applied, message = self.reload("http")
            return Reply(200 if applied else 500, f"{message}\n".encode())

        return Route(("POST", "PUT"), handle)
