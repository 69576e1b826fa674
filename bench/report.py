"""The benchmark's report: the tables, the targets checked, the plot, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from bench.figures import WAYS, Cell, Results
from bench.measure import log


# -- report ---------------------------------------------------------------------------------
def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.3g} ms"


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return ""
    r = value / reference
    return f"{r:,.0f}x" if r >= 10 else f"{r:.2g}x"


def cell_text(cell: Cell, reference: Cell | None) -> str:
    if cell.skipped:
        return cell.skipped
    ref50 = reference.p50 if reference else None
    ref99 = reference.p99 if reference else None
    text = f"{ms(cell.p50)} / {ms(cell.p99)}"
    if reference is not None and cell is not reference:
        text += f" ({ratio(cell.p50, ref50)} / {ratio(cell.p99, ref99)})"
    if cell.tool == "python":
        text += f" [n={cell.requests}]"
    return text


def markdown(results: Results) -> str:
    cells = {(c.way, c.size, c.gzip, c.scrapers): c for c in results.cells}
    sizes = sorted({c.size for c in results.cells})
    samples = {p.size: p.samples for p in results.polls}
    lines = [
        "Scrape latency p50 / p99 (in brackets: that way's figure divided by the exporter's in "
        "the same row, above 1x the exporter is faster; [n=] scrapes measured with a Python "
        "loop instead of wrk)",
        "",
        "| autoresponders (samples) | gzip | scrapers | " + " | ".join(WAYS) + " |",
        "|---|---|---|" + "---|" * len(WAYS),
    ]
    for size in sizes:
        for gzip in (True, False):
            for scrapers in (1, 8):
                reference = cells.get(("exporter", size, gzip, scrapers))
                row = [
                    f"{size:,} ({samples.get(size, 0):,})",
                    "yes" if gzip else "no",
                    str(scrapers),
                ]
                for way in WAYS:
                    cell = cells.get((way, size, gzip, scrapers))
                    row.append(cell_text(cell, reference) if cell else "-")
                lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "The exporter's poll (page size 100, loopback simulator) and scrape latency "
        "(gzip, 1 scraper) idle and while a poll runs",
        "",
        "| autoresponders | exposition plain / gzip | poll wall time | CPU per poll | RSS after "
        "poll / peak | scrape p50 / p99 idle | during a poll (n) |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in results.polls:
        lines.append(
            f"| {p.size:,} | {p.plain_mb:.1f} MB / {p.gzip_mb:.2f} MB | {p.wall:.2f} s "
            f"| {p.cpu:.2f} s | {p.rss_mb:.0f} MB / {p.peak_rss_mb:.0f} MB "
            f"| {ms(p.idle_p50)} / {ms(p.idle_p99)} "
            f"| {ms(p.during_p50)} / {ms(p.during_p99)} ({p.during_requests}) |"
        )
    lines += ["", "Body of one scrape, gzip / plain (each way compresses its own way)", ""]
    lines.append("| autoresponders | " + " | ".join(WAYS) + " |")
    lines.append("|---|" + "---|" * len(WAYS))
    for size in sizes:
        row = []
        for way in WAYS:
            zipped, plain = cells.get((way, size, True, 1)), cells.get((way, size, False, 1))
            if zipped and plain and zipped.body_bytes and plain.body_bytes:
                row.append(f"{zipped.body_bytes / 1e6:.2f} / {plain.body_bytes / 1e6:.1f} MB")
            else:
                row.append("-")
        lines.append(f"| {size:,} | " + " | ".join(row) + " |")
    lines += ["", "Resident memory after loading, MB", ""]
    lines.append("| autoresponders | " + " | ".join(WAYS) + " |")
    lines.append("|---|" + "---|" * len(WAYS))
    for size in sizes:
        rss = results.rss_mb.get(str(size), {})
        lines.append(
            f"| {size:,} | " + " | ".join(f"{rss[w]:.0f}" if w in rss else "-" for w in WAYS) + " |"
        )
    for way, why in sorted(results.skipped.items()):
        lines.append(f"\nSkipped: {way}: {why}")
    return "\n".join(lines) + "\n"


def targets(results: Results) -> list[tuple[str, bool | None, str]]:
    cells = {(c.way, c.size, c.gzip, c.scrapers): c for c in results.cells}
    polls = {p.size: p for p in results.polls}
    checks: list[tuple[str, bool | None, str]] = []
    ours = cells.get(("exporter", 10_000, True, 1))
    for way, want in (("client_python", 300.0), ("pushgateway", 300.0)):
        theirs = cells.get((way, 10_000, True, 1))
        if ours and ours.p50 and theirs and theirs.p50:
            r = theirs.p50 / ours.p50
            checks.append(
                (f"10,000: gzip p50 >= {want:.0f}x faster than {way}", r >= want, f"{r:,.0f}x")
            )
        else:
            checks.append(
                (f"10,000: gzip p50 >= {want:.0f}x faster than {way}", None, "not measured")
            )
    nginx = cells.get(("nginx", 10_000, True, 1))
    if ours and ours.p50 and nginx and nginx.p50:
        r = ours.p50 / nginx.p50
        checks.append(("10,000: gzip p50 within 3x of nginx", r <= 3, f"{r:.1f}x"))
    else:
        checks.append(("10,000: gzip p50 within 3x of nginx", None, "not measured"))
    cached = cells.get(("client_python_cached", 10_000, True, 1))
    if ours and ours.p50 and cached and cached.p50:
        r = cached.p50 / ours.p50
        checks.append(("10,000: gzip p50 of client_python_cached / exporter", None, f"{r:.1f}x"))
    big = polls.get(50_000)
    if big:
        checks.append(
            ("50,000: peak RSS <= 300 MB", big.peak_rss_mb <= 300, f"{big.peak_rss_mb:.0f} MB")
        )
        checks.append(("50,000: CPU per poll <= 5 s", big.cpu <= 5, f"{big.cpu:.2f} s"))
    for p in results.polls:
        if p.during_p50 and p.idle_p50:
            r = p.during_p50 / p.idle_p50
            checks.append((f"{p.size:,}: scrape p50 during a poll vs idle", None, f"{r:.1f}x"))
    return checks


def plot(results: Results, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed (pip install -e '.[bench]'): no plot")
        return False
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=100)
    styles = {
        "exporter": "o-",
        "client_python": "s-",
        "client_python_cached": "v-",
        "pushgateway": "^-",
        "nginx": "D-",
    }
    for way in WAYS:
        for gzip, dashes in ((True, "-"), (False, ":")):
            points = sorted(
                (c.size, c.p50)
                for c in results.cells
                if c.way == way and c.gzip == gzip and c.scrapers == 1 and c.p50
            )
            if points:
                axes.plot(
                    [x for x, _ in points],
                    [y * 1000 for _, y in points],
                    styles[way][0] + dashes,
                    label=f"{way} ({'gzip' if gzip else 'plain'})",
                    color={
                        "exporter": "C0",
                        "client_python": "C1",
                        "client_python_cached": "C4",
                        "pushgateway": "C2",
                        "nginx": "C3",
                    }[way],
                )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("autoresponders (about 11 samples each)")
    axes.set_ylabel("scrape latency p50, ms (1 scraper)")
    axes.set_title("Scrape latency: pinpointe-exporter and the alternatives")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return True


def machine() -> dict[str, str]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    versions = {}
    for tool, command in (
        ("wrk", ["wrk", "--version"]),
        ("nginx", ["nginx", "-v"]),
        ("pushgateway", ["prometheus-pushgateway", "--version"]),
    ):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10)
            versions[tool] = (done.stdout + done.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            versions[tool] = "not installed"
    import prometheus_client

    return {
        "cpu": f"{os.cpu_count()} x {model}",
        "memory": f"{int(memory) // 1024} MB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "prometheus_client": getattr(prometheus_client, "__version__", "")
        or _dist_version("prometheus-client"),
        **versions,
    }


def _load() -> str:
    """Load average (1, 5, 15 minutes): what else the machine was running."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)
