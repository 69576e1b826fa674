"""The metric families: names, types and help texts of everything the exporter serves.

The engagement families are derived from the metric keys (exporter.snapshot), one per
grouping; the health families describe each account's polling and the exporter itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.snapshot import DEFAULT_FIELDS

_CACHED = "cumulative Pinpointe figure as of the last successful poll"


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    help: str

    def header(self, openmetrics_format: bool) -> bytes:
        name = self.name
        if openmetrics_format and self.kind == "counter":
            name = name.removesuffix("_total")
        return f"# HELP {name} {self.help}\n# TYPE {name} {self.kind}\n".encode()


# metric key -> (family suffix, extra label, what the value is)
ENGAGEMENT = {
    "recipients": ("recipients", "", "Emails sent, one per recipient (falls if a send is deleted)"),
    "opens": ("opens", "", "Email opens"),
    "unique_opens": ("unique_opens", "", "Unique email opens"),
    "clicks": ("clicks", "", "Link clicks"),
    "unique_clicks": ("unique_clicks", "", "Unique link clicks"),
    "forwards": ("forwards", "", "Email forwards"),
    "unsubscribes": ("unsubscribes", "", "Unsubscribes"),
    "bounces_soft": ("bounces", 'bounce_type="soft"', "Bounces by bounce_type"),
    "bounces_hard": ("bounces", 'bounce_type="hard"', "Bounces by bounce_type"),
    "bounces_unknown": ("bounces", 'bounce_type="unknown"', "Bounces by bounce_type"),
    "complaints": ("complaints", "", "Spam complaints"),
}


def _engagement_families(prefix: str, scope: str) -> dict[str, Family]:
    sources: dict[str, list[str]] = {}
    for key, (suffix, _, _) in ENGAGEMENT.items():
        sources.setdefault(suffix, []).extend(DEFAULT_FIELDS[key])
    families: dict[str, Family] = {}
    for suffix, _, what in ENGAGEMENT.values():
        name = f"{prefix}{suffix}"
        source = "/".join(sources[suffix])
        help_text = f"{what}, per {scope} (Pinpointe {source}); {_CACHED}."
        families.setdefault(name, Family(name, "gauge", help_text))
    return families


AUTORESPONDER_FAMILIES = _engagement_families("pinpointe_autoresponder_", "autoresponder")
SEND_FAMILIES = _engagement_families("pinpointe_autoresponder_send_", "autoresponder send")
SEND_START = Family(
    "pinpointe_autoresponder_send_start_timestamp_seconds",
    "gauge",
    "Start of the autoresponder send (Pinpointe starttime), as of the last successful poll.",
)
HEALTH_FAMILIES = {
    f.name: f
    for f in (
        Family(
            "pinpointe_up",
            "gauge",
            "1 if the last poll of the account succeeded completely, else 0.",
        ),
        Family(
            "pinpointe_last_success_timestamp_seconds",
            "gauge",
            "Unix time at the end of the last fully successful poll of the account.",
        ),
        Family(
            "pinpointe_poll_duration_seconds", "gauge", "Wall time of the last poll of the account."
        ),
        Family(
            "pinpointe_poll_interval_seconds",
            "gauge",
            "Configured interval between polls of the account.",
        ),
        Family(
            "pinpointe_poll_timeout_seconds",
            "gauge",
            "Configured poll_timeout of the account: the longest one whole poll may take.",
        ),
        Family(
            "pinpointe_poll_errors_total",
            "counter",
            "Failed polls of the account by reason.",
        ),
        Family(
            "pinpointe_api_requests_total",
            "counter",
            "HTTP requests sent to Pinpointe by status code (error when no response came).",
        ),
        Family(
            "pinpointe_records",
            "gauge",
            "Records in the published snapshot of the account, by grouping.",
        ),
        Family(
            "pinpointe_skipped_values",
            "gauge",
            "Values in the published snapshot that were not non-negative numbers and were skipped.",
        ),
        Family(
            "pinpointe_truncated_label_values",
            "gauge",
            "Label values in the published snapshot cut at max_label_length (they end in "
            "…[truncated]).",
        ),
        Family(
            "pinpointe_unmapped_field_info",
            "gauge",
            "Numeric API fields seen in the last successful poll but not mapped to a metric.",
        ),
        Family(
            "pinpointe_exporter_build_info", "gauge", "Version of pinpointe-exporter; always 1."
        ),
        Family(
            "pinpointe_exporter_config_last_reload_successful",
            "gauge",
            "1 if the last configuration reload (or the start) loaded the configuration, "
            "0 if the last reload failed.",
        ),
        Family(
            "pinpointe_exporter_config_last_reload_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful configuration load.",
        ),
        Family(
            "pinpointe_exporter_web_config_last_reload_successful",
            "gauge",
            "1 if the web config (--web.config.file) in force is the file's current content, "
            "0 if its last change could not be applied (the previous one stays in force).",
        ),
        Family(
            "pinpointe_exporter_web_config_last_reload_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful load of the web config.",
        ),
    )
}
ALL_FAMILIES: tuple[Family, ...] = (
    *AUTORESPONDER_FAMILIES.values(),
    *SEND_FAMILIES.values(),
    SEND_START,
    *HEALTH_FAMILIES.values(),
)
