"""The usual prometheus_client exporter, for comparison: Gauges with labels, set after a
poll and rendered at scrape time. Polls the simulator once, then serves until killed.

    python bench/client_python_peer.py --api URL --username U --token T --port P
"""

from __future__ import annotations

import argparse
import json
import threading
import urllib.request

from prometheus_client import Gauge, start_http_server

LABELS = ["account", "autoresponder_id", "autoresponder_name"]
# API field -> (metric, bounce_type or None); the same series the exporter serves.
FIELDS = {
    "sendsize": ("recipients", None),
    "emailopens": ("opens", None),
    "emailopens_unique": ("unique_opens", None),
    "linkclicks": ("clicks", None),
    "linkclicks_unique": ("unique_clicks", None),
    "emailforwards": ("forwards", None),
    "unsubscribecount": ("unsubscribes", None),
    "bouncecount_soft": ("bounces", "soft"),
    "bouncecount_hard": ("bounces", "hard"),
    "bouncecount_unknown": ("bounces", "unknown"),
    "feedbackloopcount": ("complaints", None),
}


def fetch_all(api: str, username: str, token: str, page_size: int) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    cursor = 0
    while True:
        body = {
            "username": username,
            "usertoken": token,
            "requesttype": "Stats",
            "requestmethod": "GetAutoresponderResults",
            "details": {
                "grouping": "autoresponder",
                "pagination": {"limit": page_size, "next": cursor},
            },
        }
        request = urllib.request.Request(
            api, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            page = json.load(response)
        records.extend(page["data"])
        cursor = int(page.get("pagination", {}).get("next") or 0)
        if not cursor:
            return records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account", default="bench")
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()

    gauges: dict[str, Gauge] = {}
    for metric, bounce_type in FIELDS.values():
        if metric not in gauges:
            extra = ["bounce_type"] if bounce_type else []
            gauges[metric] = Gauge(f"pinpointe_autoresponder_{metric}", metric, LABELS + extra)
    for record in fetch_all(args.api, args.username, args.token, args.page_size):
        labels = [args.account, str(record["autoresponderid"]), record["autorespondername"]]
        for field, (metric, bounce_type) in FIELDS.items():
            if field in record:
                extra = [bounce_type] if bounce_type else []
                gauges[metric].labels(*labels, *extra).set(float(record[field]))
    start_http_server(args.port, addr="127.0.0.1")
    print("serving", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
