"""Benchmark the self-check: wall time and peak RSS, against `import psutil` in the same run.

    .venv/bin/python bench/selfcheck.py [--runs 7] [--json]

Measures, as separate processes so each starts cold like a customer's command:
  - baseline: `python -c 'import psutil'`
  - `probelink-agent check --json` on this machine
  - the same against a captured machine (tests/fixtures/machines/laptop-worn-battery)
and, in-process, the probes' own summed time for both (what the brief's 100 ms target
is about). Medians over the runs; ratios are against the baseline of the same run.
Results are written to bench/results/selfcheck.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "machines" / "laptop-worn-battery" / "sys"


def run_cold(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{argv} exited {code}")
    return wall, usage.ru_maxrss / 1024


def probes_time(sysfs_root: Path | None) -> tuple[float, float]:
    """(summed probe seconds, telemetry wall seconds) in this process, warm."""
    from probelink.agent.selfcheck import SelfCheckPlan, run_selfcheck
    from probelink.probes.context import ProbeContext

    ctx = ProbeContext.for_machine(sysfs_root)
    start = time.perf_counter()
    outcome = run_selfcheck(ctx, SelfCheckPlan())
    return outcome.probe_seconds, time.perf_counter() - start


def median_of(runs: int, fn: Callable[..., tuple[float, float]], *args: Any) -> tuple[float, float]:
    """The median of each of the two figures `fn` returns, over `runs` calls."""
    samples = [fn(*args) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description="self-check benchmark")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    py = sys.executable
    agent = [py, "-m", "probelink.agent.cli", "check", "--json"]
    base = median_of(args.runs, run_cold, [py, "-c", "import psutil"])
    live = median_of(args.runs, run_cold, agent)
    fixture = median_of(args.runs, run_cold, [*agent, "--sysfs-root", str(FIXTURE)])
    probes_time(None)  # warm the imports once
    live_probes = median_of(args.runs, probes_time, None)
    fixture_probes = median_of(args.runs, probes_time, FIXTURE)
    result = {
        "runs": args.runs,
        "baseline_import_psutil": {"wall_ms": base[0] * 1e3, "peak_rss_mib": base[1]},
        "check_this_machine": {
            "wall_ms": live[0] * 1e3,
            "peak_rss_mib": live[1],
            "wall_vs_baseline": live[0] / base[0],
            "probes_sum_ms": live_probes[0] * 1e3,
            "telemetry_wall_ms": live_probes[1] * 1e3,
        },
        "check_fixture_laptop": {
            "wall_ms": fixture[0] * 1e3,
            "peak_rss_mib": fixture[1],
            "wall_vs_baseline": fixture[0] / base[0],
            "probes_sum_ms": fixture_probes[0] * 1e3,
            "telemetry_wall_ms": fixture_probes[1] * 1e3,
        },
    }
    out = REPO / "bench" / "results" / "selfcheck.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"self-check, median of {args.runs} runs")
    for col in ("what", "wall ms", "× import psutil", "peak RSS MiB", "probes' own ms (sum)"):
        table.add_column(col, justify="right" if col != "what" else "left")
    table.add_row("python -c 'import psutil'", f"{base[0] * 1e3:.0f}", "1.00", f"{base[1]:.1f}", "")
    table.add_row(
        "check, this machine",
        f"{live[0] * 1e3:.0f}",
        f"{live[0] / base[0]:.2f}",
        f"{live[1]:.1f}",
        f"{live_probes[0] * 1e3:.1f}",
    )
    table.add_row(
        "check, captured laptop",
        f"{fixture[0] * 1e3:.0f}",
        f"{fixture[0] / base[0]:.2f}",
        f"{fixture[1]:.1f}",
        f"{fixture_probes[0] * 1e3:.1f}",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
