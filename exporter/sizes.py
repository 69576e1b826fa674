"""Byte sizes in the configuration: ``16KiB``, ``8MiB``, ``1GiB`` or a plain integer."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$")
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
    match = _SIZE.match(text.strip())
    if match is None:
        raise ValueError(f"invalid size {text!r}: use bytes or a size like 16KiB, 8MiB or 1GiB")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f}{unit}" if value.is_integer() else f"{value:.1f}{unit}"
    return f"{size}B"
