"""``python -m exporter.simulator``: run the simulator alone."""

from __future__ import annotations

import argparse
import sys
import threading

from exporter.simulator.data import SimAccount
from exporter.simulator.server import Simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator", description="Pinpointe API simulator"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on, 0 for any (default: %(default)s)"
    )
    parser.add_argument(
        "--autoresponders",
        type=int,
        default=25,
        help="autoresponders of the simulated account (default: %(default)s)",
    )
    parser.add_argument(
        "--sends-per-autoresponder",
        type=int,
        default=3,
        help="sends of each autoresponder, for grouping send (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the simulated figures (default: %(default)s)"
    )
    parser.add_argument(
        "--username", default="demo", help="the username it accepts (default: %(default)s)"
    )
    parser.add_argument(
        "--token", default="demo-token", help="the usertoken it accepts (default: %(default)s)"
    )
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
    try:
        sim = Simulator([account]).start(args.host, args.port)
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}; "
            "choose another port with --port",
            file=sys.stderr,
        )
        return 1
    print(
        f"Pinpointe simulator on http://{args.host}:{sim.port}/apijson.php, accepting "
        f"username {args.username!r} with usertoken {args.token!r}",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
