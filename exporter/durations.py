"""Prometheus-style durations in the configuration: ``90s``, ``5m``, ``1h30m``."""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)


def parse_duration(text: str) -> float:
    """Parse a Prometheus-style duration (``90s``, ``5m``, ``1h30m``) into seconds."""
    match = _DURATION.match(text.strip()) if text.strip() else None
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a Prometheus duration like 30s, 5m or 1h")
    return sum(
        int(part) * unit
        for part, unit in zip(match.groups(), _DURATION_UNITS, strict=False)
        if part is not None
    )


def format_duration(seconds: float) -> str:
    if seconds >= 1 and float(seconds).is_integer():
        whole = int(seconds)
        for unit, size in (("h", 3600), ("m", 60)):
            if whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    return f"{round(seconds * 1000)}ms"
