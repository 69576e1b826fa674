"""The Pinpointe client: GetAutoresponderResults over HTTP, page by page.

``client`` sends the requests (retries, pagination, what each answer means),
``deadline`` bounds every exchange in time, ``retry`` says what is retried and how
long a Retry-After may be waited inline, ``body`` reads an answer's bytes within its
bounds, ``envelope`` finds the records and the next cursor in whatever envelope the
server uses, and ``errors`` phrases every failure for the user (a PollError with one
of the contract's reasons).
"""

from exporter.pinpointe.client import MAX_PAGES, FetchResult, PinpointeClient, RecordSink
from exporter.pinpointe.envelope import Page, ResponseError, json_kind, parse_body
from exporter.pinpointe.errors import PollError

__all__ = [
    "MAX_PAGES",
    "FetchResult",
    "Page",
    "PinpointeClient",
    "PollError",
    "RecordSink",
    "ResponseError",
    "json_kind",
    "parse_body",
]
