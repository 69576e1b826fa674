"""``python -m exporter.simulator``: run the simulator alone."""

from __future__ import annotations

import argparse
import threading

from exporter.simulator.data import SimAccount
from exporter.simulator.server import Simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator", description="Pinpointe API simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--autoresponders", type=int, default=25)
    parser.add_argument("--sends-per-autoresponder", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--username", default="demo")
    parser.add_argument("--token", default="demo-token")
    args = parser.parse_args(argv)
    if not 1 <= args.autoresponders <= 10_000_000 or not 1 <= args.sends_per_autoresponder < 10_000:
        parser.error("--autoresponders must be >= 1 and --sends-per-autoresponder 1..9999")
    account = SimAccount(
        username=args.username,
        token=args.token,
        autoresponders=args.autoresponders,
        sends_per_autoresponder=args.sends_per_autoresponder,
        seed=args.seed,
    )
    sim = Simulator([account]).start(args.host, args.port)
    print(f"Pinpointe simulator on http://{args.host}:{sim.port}/apijson.php", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
