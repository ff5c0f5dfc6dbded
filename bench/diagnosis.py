"""Benchmark the diagnosis: reports/s with the full shipped rule-set, on one core.

    .venv/bin/python bench/diagnosis.py [--reports 1200] [--runs 5] [--json]

The corpus is the realistic fleet of bench/corpus.py (every captured machine and drive,
many devices, a few reports each). The process is pinned to one CPU. Each run measures,
over the same parsed reports:

- baseline: parsing the serialized reports (protobuf, what any reader of a report pays);
- diagnose: `Diagnoser.diagnose` of each report alone — facts, every rule (CEL), actions
  with prices and warranty coverage (a CN purchase with a battery-renewal plan), trends —
  and the document encoded as the JSON the server stores;
- with history: the same, each report judged with its device's earlier reports (the
  corpus has up to 3 per device), as the server does after ingest;
- with 60 earlier reports: the server's cap on history (`service.HISTORY_LIMIT`), the 60
  reports before each one in the corpus — the worst case of a device with a long past.

Figures are medians over the runs; the ratio is to the baseline of the same run (a busy
machine moves both). Results go to bench/results/diagnosis.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, date, datetime
from typing import Any

from corpus import REPORTS_PER_DEVICE, build_corpus
from selfcheck import REPO

from probelink.server.diagnosis.engine import Diagnoser, PurchaseFacts
from probelink.server.diagnosis.service import HISTORY_LIMIT
from probelink.v1 import report_pb2

TARGET_PER_S = 2000.0  # the design brief: diagnosis, full rule-set, one core
PURCHASE = PurchaseFacts(date(2025, 6, 1), "CN", ("battery_renewal",), (), "device")


def _pin_to_one_core() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _histories(reports: list[report_pb2.Report]) -> list[list[report_pb2.Report]]:
    """Each report's earlier reports of the same device: the corpus lists each device's
    REPORTS_PER_DEVICE reports one after another (serial numbers cannot tell: some
    captured machines have none)."""
    return [reports[i - i % REPORTS_PER_DEVICE : i] for i in range(len(reports))]


def _long_histories(reports: list[report_pb2.Report]) -> list[list[report_pb2.Report]]:
    return [reports[max(0, i - HISTORY_LIMIT) : i] for i in range(len(reports))]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def run_once(diagnoser: Diagnoser, blobs: list[bytes], now: datetime) -> dict[str, float]:
    start = time.perf_counter()
    reports = [report_pb2.Report.FromString(b) for b in blobs]
    parse_s = time.perf_counter() - start

    def diagnose_all(histories: list[list[report_pb2.Report]] | None) -> float:
        t0 = time.perf_counter()
        for i, report in enumerate(reports):
            doc = diagnoser.diagnose(
                report,
                report_id=report.report_id,
                device_id="bench",
                now=now,
                history=histories[i] if histories else (),
                purchase=PURCHASE,
            )
            json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        return time.perf_counter() - t0

    alone_s = diagnose_all(None)
    history_s = diagnose_all(_histories(reports))
    long_s = diagnose_all(_long_histories(reports))
    n = len(reports)
    return {
        "parse_per_s": _rate(n, parse_s),
        "diagnose_per_s": _rate(n, alone_s),
        "with_history_per_s": _rate(n, history_s),
        "with_60_earlier_per_s": _rate(n, long_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    cpu = _pin_to_one_core()
    blobs = build_corpus(args.reports, seed=0)
    diagnoser = Diagnoser.load()
    now = datetime.now(UTC)
    run_once(diagnoser, blobs[:100], now)  # warm: CEL programs, catalogs, caches
    runs = [run_once(diagnoser, blobs, now) for _ in range(args.runs)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "pinned_to_cpu": cpu},
        "reports": len(blobs),
        "runs": args.runs,
        "rules": len(diagnoser.rules.rules),
        "ruleset_version": diagnoser.version,
        "median": median,
        "ratio_to_parse": median["diagnose_per_s"] / median["parse_per_s"],
        "target_per_s": TARGET_PER_S,
        "target_met": median["diagnose_per_s"] >= TARGET_PER_S,
        "all_runs": runs,
    }
    out = REPO / "bench" / "results" / "diagnosis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"diagnosis, {result['rules']} rules, {len(blobs)} reports, one core "
        f"(median of {args.runs}):\n"
        f"  parse only (baseline)   {median['parse_per_s']:>10,.0f} reports/s\n"
        f"  diagnose + JSON         {median['diagnose_per_s']:>10,.0f} reports/s "
        f"({result['ratio_to_parse']:.3f}× parse; target ≥ {TARGET_PER_S:,.0f}: "
        f"{'met' if result['target_met'] else 'missed'})\n"
        f"  with device history     {median['with_history_per_s']:>10,.0f} reports/s\n"
        f"  with 60 earlier reports {median['with_60_earlier_per_s']:>10,.0f} reports/s"
    )


if __name__ == "__main__":
    main()
