"""The simulated accounts' data: deterministic from (seed, autoresponder, send, time).

Every send keeps reaching new subscribers at its own rate, and opens, clicks, bounces
and the rest are fixed fractions of its recipients, so figures only grow with time and
unique opens <= opens <= recipients always holds.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import Any

EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z: every simulated send starts after it
DAY = 86_400
_THEMES = (
    "Welcome series",
    "Onboarding drip",
    "Abandoned cart",
    "Re-engagement",
    "Birthday offer",
    "Post-purchase follow-up",
    "Trial ending",
    "Webinar reminders",
)


@dataclass
class SimAccount:
    """One simulated Pinpointe account and how its server answers."""

    username: str = "demo"
    token: str = "demo-token"
    autoresponders: int = 25
    sends_per_autoresponder: int = 3
    seed: int = 1
    numbers_as_strings: bool = True
    envelope: str = "list"  # list | indexed | item | single-item | response
    pagination_in: str = "top"  # top | data | response
    status_word: str = "SUCCESS"
    extra_fields: dict[str, Any] = field(default_factory=dict)
    latency: float = 0.0  # seconds every page answer takes, like a slow API (not a fault)
    # The requesttypes the account accepts; any other is refused as unknown, with a
    # FAILED body and this HTTP status (Pinpointe documents both Stats and Autoresponders).
    request_types: tuple[str, ...] = ("Stats", "Autoresponders")
    request_type_refusal_status: int = 400
    # Record fields served under other names (like an account whose schema differs).
    renamed_fields: dict[str, str] = field(default_factory=dict)

    def autoresponder_name(self, index: int) -> str:
        theme = _THEMES[index % len(_THEMES)]
        return theme if index < len(_THEMES) else f"{theme} {index // len(_THEMES) + 1}"


@dataclass(frozen=True)
class _SendModel:
    start: int
    base: int
    per_hour: int
    ratios: tuple[float, ...]


# Record field -> index into _SendModel.ratios; all are fractions of recipients.
_RATIO_FIELDS = (
    "emailopens",
    "emailopens_unique",
    "linkclicks",
    "linkclicks_unique",
    "emailforwards",
    "unsubscribecount",
    "bouncecount_soft",
    "bouncecount_hard",
    "bouncecount_unknown",
    "feedbackloopcount",
    "htmlopens",  # served but not mapped by default: shows up as pinpointe_unmapped_field_info
)


def send_model(account: SimAccount, ar_index: int, send_index: int) -> _SendModel:
    return cached_send_model(account.seed, account.sends_per_autoresponder, ar_index, send_index)


# A send's model depends only on these four numbers; building it is most of the cost of a
# record, and the benchmarks ask for the same hundreds of thousands of records every poll.
@functools.lru_cache(maxsize=1 << 19)
def cached_send_model(
    seed: int, sends_per_autoresponder: int, ar_index: int, send_index: int
) -> _SendModel:
    rng = random.Random(f"{seed}:{ar_index}:{send_index}")
    opens = rng.uniform(0.15, 0.6)
    unique_opens = opens * rng.uniform(0.55, 0.95)
    clicks = opens * rng.uniform(0.05, 0.35)
    unique_clicks = clicks * rng.uniform(0.6, 0.95)
    ratios = (
        opens,
        unique_opens,
        clicks,
        unique_clicks,
        rng.uniform(0.0, 0.01),
        rng.uniform(0.001, 0.012),
        rng.uniform(0.0, 0.03),
        rng.uniform(0.0, 0.01),
        rng.uniform(0.0, 0.004),
        rng.uniform(0.0, 0.002),
    )
    stopped = rng.random() < 0.05
    html_opens = opens * rng.uniform(0.7, 0.9)
    weeks_before_epoch = sends_per_autoresponder - send_index
    return _SendModel(
        start=EPOCH - weeks_before_epoch * 7 * DAY + (ar_index % 97) * 3_600,
        base=rng.randint(50, 4_000),
        per_hour=0 if stopped else rng.randint(5, 300),
        ratios=(*ratios, html_opens),
    )


def send_figures(model: _SendModel, now: float) -> dict[str, int]:
    elapsed = max(0.0, now - model.start)
    recipients = model.base + int(model.per_hour * elapsed // 3_600)
    figures = {"sendsize": recipients}
    for name, ratio in zip(_RATIO_FIELDS, model.ratios, strict=True):
        figures[name] = int(recipients * ratio)
    return figures
