"""Stable assignment of accounts to shards, so several replicas can split the work."""

from __future__ import annotations

import hashlib
import re

_SHARD = re.compile(r"^(\d+)/(\d+)$")


def shard_of(account_name: str, count: int) -> int:
    """The shard (0-based) that polls ``account_name``; depends on nothing but the name."""
    digest = hashlib.sha256(account_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """``INDEX/COUNT`` (0-based INDEX) -> (index, count)."""
    match = _SHARD.match(text.strip())
    if match is None:
        raise ValueError(f"invalid --shard {text!r}: use INDEX/COUNT, e.g. 0/3")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ValueError(f"invalid --shard {text!r}: INDEX must be from 0 to COUNT-1")
    return index, count
