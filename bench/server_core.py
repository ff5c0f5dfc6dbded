"""The server-core benchmarks in one run: report sizes, the echo ceiling, durable ingest.

    .venv/bin/python bench/server_core.py [--quick] [--runs 3] [--json] [--postgres URL]

Sizes on the realistic corpus (bench/sizes.py); then, `--runs` times over, the bare
grpc.aio echo stream (bench/echo.py) and the real server's durable ingest of signed
reports (bench/ingest.py: every signature verified, as in production) with 1 and 8
streaming clients, interleaved so that a busy machine
moves the ceiling and the figure alike. Each figure is the median over the runs and is
also shown as a ratio to the echo ceiling with the same number of clients. PostgreSQL
is measured when --postgres, PROBELINK_BENCH_POSTGRES or PROBELINK_TEST_POSTGRES names
a server (a fresh schema per run, dropped after). Results go to
bench/results/server_core.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from typing import Any

import echo
import ingest
import sizes
from selfcheck import REPO
from streams import corpus_dictionary

CLIENTS = (1, 8)
# From the design brief's "What fast means" (docs: shared/design.md).
TARGETS = {
    ("sqlite", 8): (5000.0, 0.6),
    ("postgresql", 8): (3000.0, None),
}


def run(messages: int, runs: int, reports: int, pg: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "note": "clients and server share these cores"},
        # Every ingested report carries an Ed25519 signature the server verifies.
        "signed_reports": True,
        "messages_per_run": messages,
        "runs": runs,
        "sizes": sizes.measure(reports),
    }
    dictionary = corpus_dictionary()
    backends: list[str | None] = [None, pg] if pg else [None]
    echo_rates: dict[int, list[float]] = {n: [] for n in CLIENTS}
    ingest_rates: dict[tuple[str, int], list[float]] = {}
    checks: list[dict[str, Any]] = []
    for _ in range(runs):
        for clients in CLIENTS:
            echo_rates[clients].append(echo.measure(clients, messages, dictionary).per_second)
            for url in backends:
                got = ingest.measure_on(url, clients, messages)
                ingest_rates.setdefault((got.backend, clients), []).append(got.rate.per_second)
                checks.append(
                    {
                        "backend": got.backend,
                        "clients": clients,
                        "stored": got.stored,
                        "expected": got.expected,
                        "dictionary_id": got.dictionary_id,
                    }
                )
    ceiling = {n: statistics.median(r) for n, r in echo_rates.items()}
    result["echo"] = {
        str(n): {"messages_per_s": ceiling[n], "samples": echo_rates[n]} for n in CLIENTS
    }
    rows = []
    for (backend, clients), rates in ingest_rates.items():
        rate = statistics.median(rates)
        target_rate, target_ratio = TARGETS.get((backend, clients), (None, None))
        rows.append(
            {
                "backend": backend,
                "clients": clients,
                "reports_per_s": rate,
                "vs_echo": rate / ceiling[clients],
                "samples": rates,
                "target_reports_per_s": target_rate,
                "target_vs_echo": target_ratio,
            }
        )
    result["ingest"] = rows
    result["stored_checks"] = checks
    result["all_stored_once"] = all(c["stored"] == c["expected"] for c in checks)
    return result


def print_sizes(sizes_result: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    r = sizes_result
    table = Table(
        title=f"report size on the wire, {r['measured_on']} reports "
        f"(dictionary trained on the other {r['trained_on']})"
    )
    for col in ("encoding", "mean bytes", "× smaller than raw", "µs per report"):
        table.add_column(col, justify="left" if col == "encoding" else "right")
    raw = r["codecs"]["raw"]["mean_bytes"]
    for name, row in r["codecs"].items():
        us = f"{row['us_per_report']:.1f}" if name != "raw" else ""
        table.add_row(name, f"{row['mean_bytes']:,.0f}", f"{raw / row['mean_bytes']:.1f}", us)
    console.print(table)
    ratio = r["zstd_over_dictionary"]
    verdict = "meets" if ratio >= r["target_zstd_over_dictionary"] else "MISSES"
    console.print(
        f"zstd + dictionary is {ratio:.2f}× smaller than zstd alone "
        f"(target ≥ {r['target_zstd_over_dictionary']:.0f}×: {verdict})"
    )


def print_result(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    print_sizes(result["sizes"], console)
    table = Table(
        title=f"durable ingest vs a bare grpc.aio stream, median of {result['runs']} runs "
        f"of {result['messages_per_run']:,} reports"
    )
    for col in ("what", "clients", "per second", "× echo", "target"):
        table.add_column(col, justify="left" if col in ("what", "target") else "right")
    for n in CLIENTS:
        rate = result["echo"][str(n)]["messages_per_s"]
        table.add_row("echo ceiling", str(n), f"{rate:,.0f}", "1.00", "")
    for row in sorted(result["ingest"], key=lambda r: (r["backend"] != "sqlite", r["clients"])):
        target = []
        if row["target_reports_per_s"]:
            met = row["reports_per_s"] >= row["target_reports_per_s"]
            target.append(f"≥ {row['target_reports_per_s']:,.0f}/s {'ok' if met else 'MISSED'}")
        if row["target_vs_echo"]:
            met = row["vs_echo"] >= row["target_vs_echo"]
            target.append(f"≥ {row['target_vs_echo']}× echo {'ok' if met else 'MISSED'}")
        table.add_row(
            f"ingest, {row['backend']}",
            str(row["clients"]),
            f"{row['reports_per_s']:,.0f}",
            f"{row['vs_echo']:.2f}",
            "; ".join(target),
        )
    console.print(table)
    stored = (
        "every acked report stored exactly once"
        if result["all_stored_once"]
        else ("STORED COUNT DIFFERS FROM ACKED: see stored_checks in the JSON")
    )
    console.print(
        f"{stored}. This machine has {result['machine']['cpus']} cores: the client "
        "processes compete with the server for them, in the echo runs as in ingest."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="server-core benchmarks")
    parser.add_argument("--quick", action="store_true", help="one short run of each")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20000, help="reports per run")
    parser.add_argument("--reports", type=int, default=2000, help="corpus size for sizes")
    parser.add_argument("--postgres", help="postgresql://… (a schema per run is made)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.messages, args.reports = 1, 4000, 600
    result = run(args.messages, args.runs, args.reports, ingest.postgres_url(args.postgres))
    out = REPO / "bench" / "results" / "server_core.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_result(result)


if __name__ == "__main__":
    main()
