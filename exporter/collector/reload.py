"""Configuration reload without a restart: SIGHUP, POST /-/reload and file polling.

A configuration that does not load changes nothing; one that loads is applied by the
Fleet, account by account.
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
from pathlib import Path

from exporter.collector.fleet import Changes, Fleet
from exporter.config import MAX_CONFIG_FILE_SIZE, ConfigError, Settings
from exporter.config.files import FileProblem, read_bytes
from exporter.exposition import Store, render_reload

log = logging.getLogger("exporter.reload")


# The longest one reload may take to load the configuration; past it the reload fails
# and the running configuration stays.
RELOAD_TIMEOUT = 30.0
RELOAD_BUSY = (
    "a reload is already in progress and another request waits for it; this one is folded "
    "into it: its outcome shows on /api/v1/status and in "
    "pinpointe_exporter_config_last_reload_successful"
)


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
        self._waiting = False  # a caller waits for a reload's outcome
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

    def reload(self, trigger: str) -> tuple[bool | None, str]:
        """Ask for a reload and wait for it: (applied, message for the user). Waits for
        the reload running now, if any, then for its own: at most twice ``timeout``.
        While another caller already waits, this one does not (None): its request is
        folded into the coming reload, whose outcome the metrics and status page show,
        so callers that give up cannot pile up waiting."""
        ticket = self.request(trigger)
        with self._done:
            if self._waiting:
                return None, RELOAD_BUSY
            self._waiting = True
            try:
                done = self._done.wait_for(lambda: self._finished >= ticket, 2 * self.timeout + 1.0)
                if done:
                    return self._outcome
            finally:
                self._waiting = False
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
                "the configuration (a file it reads does not answer, or is too large to read "
                "in time)",
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
                "does not answer, or is too large to read in time)"
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
