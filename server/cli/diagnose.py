"""`probelink-server diagnose`: a report's diagnosis as text, JSON or a printable page.

probelink-server diagnose 0b7e…                         # terminal text, English
probelink-server diagnose 0b7e… --lang zh-CN
probelink-server diagnose 0b7e… --format json           # schema probelink.diagnosis/v1
probelink-server diagnose 0b7e… --format html -o d.html # one self-contained A4 page
probelink-server diagnose 0b7e… --recompute             # again, with the server's rules now
probelink-server diagnose 0b7e… --purchased 2025-03-01 --region CN --plan battery_renewal
probelink-server diagnose --recompute --all             # every diagnosis other rules made

The diagnosis is made on the server (it holds the rules, catalogs and the device's
history); this command only asks for it and shows it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from probelink.diagnosis_text import LANGS, render_diagnosis
from probelink.server.cli.client import Client, JsonOpt, connected, fail
from probelink.server.render.diagnosis_html import render_diagnosis_html
from probelink.v1 import advisory_pb2, reports_pb2

FORMATS = ("text", "json", "html")


@connected
def diagnose(
    client: Client,
    report_id: Annotated[
        str | None, typer.Argument(help="The report to diagnose (`reports list` shows ids).")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="text (terminal), json or html (printable page).")
    ] = "text",
    lang: Annotated[str, typer.Option("--lang", help="en or zh-CN.")] = "en",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    recompute: Annotated[
        bool, typer.Option("--recompute", help="Diagnose again with the server's current rules.")
    ] = False,
    every: Annotated[
        bool,
        typer.Option("--all", help="With --recompute: every stored diagnosis other rules made."),
    ] = False,
    purchased: Annotated[
        str | None,
        typer.Option(
            "--purchased", help="What if: judge warranty from this purchase date (YYYY-MM-DD)."
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="What if: the region of purchase (CN, EU, US).")
    ] = None,
    plan: Annotated[
        list[str] | None, typer.Option("--plan", help="What if: a plan bought (repeatable).")
    ] = None,
    exclusion: Annotated[
        list[str] | None,
        typer.Option("--exclusion", help="What if: an exclusion found (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a report's diagnosis: verdict, findings, actions with cost and cover, trends."""
    if json_out:
        output_format = "json"
    if output_format not in FORMATS:
        raise fail(f"--format {output_format!r}: use one of {', '.join(FORMATS)}")
    if lang not in LANGS:
        raise fail(f"--lang {lang!r}: use one of {', '.join(LANGS)}")
    if every:
        if not recompute or report_id is not None:
            raise fail("--all goes with --recompute and no report id")
        _recompute_all(client, output_format == "json")
        return
    if report_id is None or not report_id.strip():
        raise fail("give a report id (`probelink-server reports list` shows them)")
    what_if = any(v for v in (purchased, region, plan, exclusion))
    request = reports_pb2.GetDiagnosisRequest(report_id=report_id.strip(), recompute=recompute)
    if what_if:
        if not purchased or not region:
            raise fail("--purchased and --region go together (--plan and --exclusion add to them)")
        request.warranty.CopyFrom(
            advisory_pb2.WarrantyFacts(
                purchase_date=purchased,
                region=region,
                plans=plan or [],
                exclusions=exclusion or [],
            )
        )
    response: reports_pb2.GetDiagnosisResponse = client.call(client.reports.GetDiagnosis, request)
    document = json.loads(response.diagnosis_json)
    if output_format == "json":
        _emit(json.dumps(document, ensure_ascii=False, indent=2) + "\n", output)
    elif output_format == "html":
        _emit(render_diagnosis_html(document, lang), output)
    else:
        _print_text(document, lang, output)
    if response.ruleset_version != response.current_ruleset_version:
        Console(stderr=True, highlight=False).print(
            f"Made by rules {response.ruleset_version[:12]}; the server now has "
            f"{response.current_ruleset_version[:12]} (--recompute diagnoses it again).",
            style="dim",
            markup=False,
        )


def _print_text(document: dict[str, object], lang: str, output: Path | None) -> None:
    if output is None:
        Console(highlight=False).print(render_diagnosis(document, lang))
        return
    with output.open("w", encoding="utf-8") as handle:
        Console(file=handle, highlight=False, width=100, no_color=True).print(
            render_diagnosis(document, lang)
        )


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")


def _recompute_all(client: Client, json_out: bool) -> None:
    # Many diagnoses can take a while: wait as long as a person would.
    client.timeout_s = max(client.timeout_s, 600.0)
    response: reports_pb2.RecomputeDiagnosesResponse = client.call(
        client.reports.RecomputeDiagnoses, reports_pb2.RecomputeDiagnosesRequest()
    )
    if json_out:
        print(
            json.dumps(
                {
                    "recomputed": response.recomputed,
                    "current": response.current,
                    "ruleset_version": response.ruleset_version,
                }
            )
        )
        return
    Console(highlight=False).print(
        f"Diagnosed {response.recomputed} report(s) again with rules "
        f"{response.ruleset_version[:12]}; {response.current} were already current.",
        markup=False,
    )
