"""Faults the simulator can inject per account, switchable at run time.

Each fault is a function answering one API request its own way (``call.FaultCall``
gives it the raw request, the normal answer and its parameters), registered once by
the ``@fault`` decorator in the module of its kind: ``transport``, ``status``,
``failed``, ``bodies``, ``pagination``, ``records``, ``hostile``.
"""

from exporter.simulator.faults import (
    bodies,
    failed,
    hostile,
    pagination,
    records,
    status,
    transport,
)
from exporter.simulator.faults.call import (
    DISPATCH_PARAMS,
    FAULT_PARAMS,
    FAULTS,
    Fault,
    FaultCall,
    applies,
)
from exporter.simulator.faults.hostile import INJECTED_MESSAGE
from exporter.simulator.faults.records import BAD_VALUES, DUPLICATE_MARKER, ODD_NAMES

KINDS = (transport, status, failed, bodies, pagination, records, hostile)

__all__ = [
    "BAD_VALUES",
    "DISPATCH_PARAMS",
    "DUPLICATE_MARKER",
    "FAULTS",
    "FAULT_PARAMS",
    "INJECTED_MESSAGE",
    "KINDS",
    "ODD_NAMES",
    "Fault",
    "FaultCall",
    "applies",
]
