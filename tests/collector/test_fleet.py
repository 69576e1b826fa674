"""The poll slots shared by the fleet, resized by a reload without interrupting polls."""

from __future__ import annotations

import threading

from exporter.collector import Slots
from tests.conftest import (
    PATIENCE,
)


def test_slots_resize_without_interrupting_polls() -> None:
    slots = Slots(2)
    assert slots.acquire(timeout=0) and slots.acquire(timeout=0)
    assert not slots.acquire(timeout=0)
    slots.resize(1)
    slots.release()
    assert not slots.acquire(timeout=0)  # one still in use, and one is the new size
    slots.resize(3)
    got = threading.Event()

    def acquire_then_signal() -> None:
        slots.acquire()
        got.set()

    threading.Thread(target=acquire_then_signal).start()
    assert got.wait(PATIENCE)
    assert slots.acquire(timeout=0)
    assert not slots.acquire(timeout=0)
