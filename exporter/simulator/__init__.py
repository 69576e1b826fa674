"""A Pinpointe JSON API simulator: GetAutoresponderResults as documented, on real HTTP.

Figures are deterministic from (seed, autoresponder, send, time) and only grow with
time: every send keeps reaching new subscribers at its own rate, and opens, clicks,
bounces and the rest are fixed fractions of its recipients, so unique opens <= opens
<= recipients always holds. Used by the tests, by ``--demo`` and by the benchmarks.

Fault injection (``faults/``: the hostile and broken answers the tests use) lives in the
source tree only: the installed package, and so the image, leaves it out.

Run alone: ``python -m exporter.simulator --port 8080 --autoresponders 50``.
"""

from exporter.simulator.data import EPOCH, SimAccount
from exporter.simulator.handler import RequestRecord
from exporter.simulator.server import Simulator
from exporter.simulator.wire import CREDENTIALS_FAILED

__all__ = [
    "CREDENTIALS_FAILED",
    "EPOCH",
    "RequestRecord",
    "SimAccount",
    "Simulator",
]
