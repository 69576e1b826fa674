"""Where the default max_exposition_size stops: the most autoresponders one account may
have (short names, every figure present) before its polls are refused.

    .venv/bin/python bench/exposition_bound.py [--step 500]

Polls the simulator with ``--once`` and the configuration's defaults, bisecting the
number of autoresponders, and prints the largest one that was published and the
smallest one that was refused with the exporter's message.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.simulator import SimAccount, Simulator  # noqa: E402

REFUSED = "on /metrics; raise max_exposition_size"


def published(autoresponders: int, workdir: Path) -> tuple[bool, str]:
    """Poll an account of ``autoresponders`` once with the default bounds."""
    sim = Simulator(
        [SimAccount(username="bench", token="bench-token", autoresponders=autoresponders)]
    )
    sim.start("127.0.0.1", 0)
    try:
        config = workdir / "config.yaml"
        account = {
            "name": "bench",
            "api_url": sim.url,
            "username": "bench",
            "usertoken": "bench-token",
            "page_size": 1000,
        }
        config.write_text(json.dumps({"timeout": "5m", "accounts": [account]}))
        result = subprocess.run(
            [sys.executable, "-m", "exporter", f"--config.file={config}", "--once"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        sim.stop()
    refusal = next((line for line in result.stderr.splitlines() if REFUSED in line), "")
    if result.returncode == 0:
        return True, ""
    if not refusal:
        raise SystemExit(f"the poll of {autoresponders} failed otherwise:\n{result.stderr}")
    return False, refusal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--low", type=int, default=10_000)
    parser.add_argument("--high", type=int, default=80_000)
    parser.add_argument("--step", type=int, default=500)
    args = parser.parse_args()
    low, high = args.low, args.high
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        if not published(low, workdir)[0]:
            raise SystemExit(f"{low} autoresponders are refused already")
        ok, refusal = published(high, workdir)
        if ok:
            raise SystemExit(f"{high} autoresponders are published: raise --high")
        while high - low > args.step:
            middle = (low + high) // 2
            ok, message = published(middle, workdir)
            print(f"{middle:>7,} autoresponders: {'published' if ok else 'refused'}", flush=True)
            if ok:
                low = middle
            else:
                high, refusal = middle, message
    print(f"default max_exposition_size: up to {low:,} autoresponders published; {high:,} refused")
    print(f"  {refusal.strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
