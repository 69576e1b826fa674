"""server.py in-process: what /admin/fault accepts in a source checkout, where fault
injection is present (the installed package leaves it out: test_docker_build.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from exporter.simulator import SimAccount, Simulator

ACCOUNT = SimAccount(username="acme", token="t0ken", autoresponders=2)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator([ACCOUNT]).start()
    try:
        yield simulator
    finally:
        simulator.stop()


def admin(sim: Simulator, body: dict[str, Any]) -> requests.Response:
    base = sim.url.removesuffix("/apijson.php")
    return requests.post(f"{base}/admin/fault", json=body, timeout=60)


def api(sim: Simulator) -> requests.Response:
    request = {
        "username": ACCOUNT.username,
        "usertoken": ACCOUNT.token,
        "requesttype": "Stats",
        "requestmethod": "GetAutoresponderResults",
        "details": {"grouping": "autoresponder"},
    }
    return requests.post(sim.url, json=request, timeout=60)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"username": "acme", "fault": "no_such_fault"}, "unknown fault 'no_such_fault'"),
        (
            {"username": "acme", "fault": "http_500", "params": {"seconds": 3}},
            "fault 'http_500' takes no parameter seconds",
        ),
        (
            {"username": "acme", "fault": None, "params": {"later_pages": True}},
            "clearing a fault takes no parameters",
        ),
        ({"fault": "http_500"}, "'username'"),
    ],
)
def test_a_refused_fault_says_why_and_changes_nothing(
    sim: Simulator, body: dict[str, Any], error: str
) -> None:
    refused = admin(sim, body)
    assert refused.status_code == 400
    assert error in refused.json()["error"]
    assert sim.fault_of(ACCOUNT.username) is None
    assert api(sim).json()["status"] == "SUCCESS"


def test_a_fault_answers_with_its_defaults_until_cleared(sim: Simulator) -> None:
    assert admin(sim, {"username": "acme", "fault": "rate_limited"}).status_code == 200
    limited = api(sim)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"  # the default of @fault(retry_after=2)
    assert admin(sim, {"username": "acme", "fault": None}).status_code == 200
    assert api(sim).json()["status"] == "SUCCESS"
