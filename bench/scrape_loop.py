"""Scrape a URL back to back and print one line per scrape: start end status bytes
(time.monotonic(), which is the same clock in every process on Linux). Runs until killed
or until --seconds have passed (with at least --min-requests scrapes per worker).

    python bench/scrape_loop.py URL [--gzip] [--concurrency 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
import urllib.parse


def worker(url: str, gzip: bool, deadline: float, min_requests: int, lock: threading.Lock) -> None:
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or "127.0.0.1"
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    connection = http.client.HTTPConnection(host, parsed.port, timeout=600)
    done = 0
    while done < min_requests or time.monotonic() < deadline:
        start = time.monotonic()
        try:
            connection.request("GET", parsed.path or "/", headers=headers)
            response = connection.getresponse()
            size = len(response.read())
            status = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(host, parsed.port, timeout=600)
            size, status = 0, 0
        end = time.monotonic()
        with lock:
            sys.stdout.write(f"{start:.6f} {end:.6f} {status} {size}\n")
            sys.stdout.flush()
        done += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--min-requests", type=int, default=1)
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=worker, args=(args.url, args.gzip, deadline, args.min_requests, lock)
        )
        for _ in range(args.concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
