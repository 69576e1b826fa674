"""Units in the configuration: Prometheus-style durations (``90s``, ``5m``, ``1h30m``)
and byte sizes (``16KiB``, ``8MiB``, ``1GiB`` or a plain integer)."""

from __future__ import annotations

import re

# ASCII digits only: \d would take "٣m" as 3m, which Prometheus refuses.
_DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?"
    r"(?:([0-9]+)s)?(?:([0-9]+)ms)?"
)
_DURATION_UNITS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)
# The longest duration accepted: far beyond any use, far below what the clocks and socket
# timeouts take (about 292 years; past that a poll fails and a poller thread dies).
MAX_DURATION = 100 * 365 * 86400.0


def parse_duration(text: str) -> float:
    """Parse a Prometheus-style duration (``90s``, ``5m``, ``1h30m``) into seconds."""
    match = _DURATION.fullmatch(text.strip()) if text.strip() else None
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a Prometheus duration like 30s, 5m or 1h")
    parts = [(part, unit) for part, unit in zip(match.groups(), _DURATION_UNITS, strict=False)]
    if any(part is not None and len(part) > 15 for part, _ in parts):
        raise ValueError(f"duration {text[:40]!r} is longer than 100y, the longest accepted")
    seconds = sum(int(part) * unit for part, unit in parts if part is not None)
    if seconds > MAX_DURATION:
        raise ValueError(f"duration {text!r} is longer than 100y, the longest accepted")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds >= 1 and float(seconds).is_integer():
        whole = int(seconds)
        for unit, size in (("h", 3600), ("m", 60)):
            if whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    return f"{round(seconds * 1000)}ms"


_SIZE = re.compile(r"([0-9]+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?")
_UNITS = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}


def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid size {text!r}: use bytes or a size like 16KiB, 8MiB or 1GiB")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f}{unit}" if value.is_integer() else f"{value:.1f}{unit}"
    return f"{size}B"
