"""Why a poll failed: the values of pinpointe_poll_errors_total's ``reason`` label.

Defined once here; the exposition lists every member, and a mistyped reason is a mypy
error rather than a series that is counted but never exported.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    AUTH = "auth"
    API_FAILED = "api_failed"
    HTTP = "http"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMITED = "rate_limited"
    INVALID_RESPONSE = "invalid_response"
    PAGINATION = "pagination"


POLL_ERROR_REASONS: tuple[Reason, ...] = tuple(Reason)
