"""First contact with a real account: diagnoses that point at the fix.

Pinpointe never published this call's response schema, and documents it under two
request types, so the first real polls are when the exporter must explain itself:

- the request type: when the configured one is refused as an unknown request, the
  other documented one is tried once (unless ``request_type`` is given in the file);
- the figures: records without any recognised engagement field, or metrics that no
  record feeds, are reported with the numeric fields seen and how to map them.

Each diagnosis is logged once per change and kept as a hint for the status page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from exporter.config import REQUEST_TYPES, AccountConfig
from exporter.pinpointe import PinpointeClient, PollError
from exporter.snapshot import METRIC_KEYS, Snapshot

log = logging.getLogger("exporter.diagnose")

_NAMES_REQUEST = re.compile(r"request\s*_?type|\b(?:stats|autoresponders)\b|unknown request", re.I)
_REFUSED = re.compile(
    r"unknown|invalid|unsupported|not (?:supported|recogni[sz]ed|allowed|valid)|no such", re.I
)
FIELDS_LISTED = 10


def refused_as_unknown(error: PollError) -> bool:
    """A FAILED answer (HTTP 200 or 400) saying the request or its type is unknown."""
    return (
        error.reason == "api_failed"
        and _NAMES_REQUEST.search(error.message) is not None
        and _REFUSED.search(error.message) is not None
    )


class Diagnosis:
    """The diagnoses of one account; ``hints`` is what the status page shows."""

    def __init__(self, account: AccountConfig, client: PinpointeClient) -> None:
        self.account = account
        self.client = client
        self.probed = not account.probe_request_type
        self._probe_hint: str | None = None
        self._figures_hints: tuple[str, ...] = ()

    @property
    def hints(self) -> tuple[str, ...]:
        probe = (self._probe_hint,) if self._probe_hint else ()
        return (*probe, *self._figures_hints)

    def probing(self, fetch: Callable[[], Snapshot]) -> Callable[[], Snapshot]:
        """``fetch``, trying the other documented request type once if this one is refused."""

        def probe() -> Snapshot:
            try:
                return fetch()
            except PollError as error:
                if self.probed or not refused_as_unknown(error):
                    raise
                self.probed = True
                configured = self.client.request_type
                (other,) = (t for t in REQUEST_TYPES if t != configured)
                self.client.request_type = other
                try:
                    snapshot = fetch()
                except PollError:
                    self.client.request_type = configured
                    raise error from None
                self._probe_hint = (
                    f"request_type {configured} was refused as unknown ({error.message}); "
                    f"{other} works and is used from now on: pin it with "
                    f"request_type: {other} in the configuration"
                )
                log.warning(self._probe_hint, extra={"fields": {"account": self.account.name}})
                return snapshot

        return probe

    def check_figures(self, snapshot: Snapshot) -> None:
        """Log, once per change, records that carry no recognised figures or metrics that
        none of them feeds, with the numeric fields seen and how to map them."""
        found = figures_hint(self.account.name, snapshot)
        hints = () if found is None else (found[1],)
        if hints == self._figures_hints:
            return
        self._figures_hints = hints
        if found is not None:
            log.log(found[0], found[1], extra={"fields": {"account": self.account.name}})


def figures_hint(account: str, snapshot: Snapshot) -> tuple[int, str] | None:
    """(log level, text) when no record carries a recognised figure, or some metrics are
    fed by none while unmapped numeric fields came that may hold them (warn; info when
    there is nothing to map); None when every metric is fed or nothing came."""
    records = snapshot.record_count
    if records == 0:
        return None
    shapes = {id(r.keys): r.keys for g in snapshot.groupings for r in g.records}
    fed = {key for keys in shapes.values() for key in keys}
    unmapped = sorted(snapshot.unmapped_fields)
    listed = ", ".join(unmapped[:FIELDS_LISTED]) + (" …" if len(unmapped) > FIELDS_LISTED else "")
    example = f"field_map: {{{unmapped[0]}: opens}}" if unmapped else "field_map"
    if not fed:
        seen = f"numeric fields seen: {listed}" if unmapped else "it sent no numeric fields"
        return logging.WARNING, (
            f"account {account} returned {records} records with no recognised figures; "
            f"{seen}; map the ones that hold engagement figures with {example} "
            "(targets: " + ", ".join(METRIC_KEYS) + ")"
        )
    missing = [key for key in METRIC_KEYS if key not in fed]
    if not missing:
        return None
    if not unmapped:
        return logging.INFO, (
            f"account {account}: no record carried {', '.join(missing)}, and the account "
            "sent no other numeric field: those metrics stay absent"
        )
    return logging.WARNING, (
        f"account {account}: no record carried {', '.join(missing)}; numeric fields not "
        f"mapped: {listed}; if one of them holds such a figure, map it with {example}"
    )
