"""The usual prometheus_client exporter, for comparison: Gauges with labels, set after a
poll and rendered at scrape time. Polls the simulator once, then serves until killed.

With --cached it is the fairer peer for a pre-rendered design: the same Gauges rendered
once after the poll (generate_latest, plain and gzip-compressed), and every scrape
served those cached bytes from http.server (the server the exporter is built on too).

    python bench/client_python_peer.py --api URL --username U --token T --port P [--cached]
"""

from __future__ import annotations

import argparse
import gzip
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Gauge,
    generate_latest,
    start_http_server,
)

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


def serve_cached(port: int) -> None:
    """Render the registry once and serve those bytes (gzip when asked) to every scrape."""
    plain = generate_latest(REGISTRY)
    compressed = gzip.compress(plain)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            zipped = "gzip" in (self.headers.get("Accept-Encoding") or "")
            body = compressed if zipped else plain
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            if zipped:
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account", default="bench")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--cached", action="store_true", help="render once, serve the bytes")
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
    if args.cached:
        serve_cached(args.port)
    else:
        start_http_server(args.port, addr="127.0.0.1")
    print("serving", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
