"""--demo's simulator: it serves the API, and no fault can be switched on from outside."""

from __future__ import annotations

import requests

from exporter.demo import DEMO_ACCOUNT, DEMO_TOKEN, start_demo


def test_the_demo_simulator_serves_the_api_but_no_admin_endpoint() -> None:
    simulator, settings = start_demo(autoresponders=3)
    try:
        base = simulator.url.removesuffix("/apijson.php")
        fault = requests.post(
            f"{base}/admin/fault", json={"username": DEMO_ACCOUNT, "fault": "http_500"}, timeout=60
        )
        assert fault.status_code == 404, fault.text
        assert requests.get(f"{base}/admin/stats", timeout=60).status_code == 404
        assert simulator.fault_of(DEMO_ACCOUNT) is None
        answer = requests.post(
            simulator.url,
            json={
                "username": DEMO_ACCOUNT,
                "usertoken": DEMO_TOKEN,
                "requesttype": "Stats",
                "requestmethod": "GetAutoresponderResults",
                "details": {"grouping": "autoresponder"},
            },
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "SUCCESS", answer.text
        assert settings.accounts[0].api_url == simulator.url
    finally:
        simulator.stop()
