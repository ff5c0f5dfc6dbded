"""`probelink-agent`: the device side's commands.

    probelink-agent check                       # self-check this machine
    probelink-agent check --json                # the report as JSON
    probelink-agent check --sysfs-root tests/fixtures/machines/laptop-worn-battery/sys
    probelink-agent probes                      # what can run here, and why not

Exit codes of `check`: 0 nothing failed, 1 a check failed, 2 usage or internal error,
130 interrupted (the report of what ran is still written).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf import json_format
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
from rich.prompt import Confirm

from probelink.agent.render import render_report
from probelink.agent.selfcheck import Hooks, SelfCheckPlan, run_selfcheck
from probelink.probes.context import ProbeContext
from probelink.probes.errors import ProbeProblem
from probelink.probes.registry import ROUTINE, TELEMETRY, all_probes
from probelink.probes.results import FAIL, SKIP
from probelink.probes.runner import run_telemetry
from probelink.v1 import probe_pb2, report_pb2, routine_pb2

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

app = typer.Typer(
    help="Probelink agent: check this device's hardware and report it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SysfsRootOpt = Annotated[
    Path | None,
    typer.Option(
        "--sysfs-root",
        help="Read a captured sysfs tree instead of this machine's.",
        file_okay=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def parse_limits(pairs: list[str]) -> dict[str, float]:
    """`["battery.min_health_pct=75"]` -> `{"battery.min_health_pct": 75.0}`."""
    limits: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or "." not in name:
            raise typer.BadParameter(
                f"{pair!r}: expected FAMILY.NAME=NUMBER, e.g. battery.min_health_pct=75",
                param_hint="--limit",
            )
        try:
            limits[name.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(
                f"{pair!r}: {value!r} is not a number", param_hint="--limit"
            ) from None
    return limits


def _context(
    sysfs_root: Path | None,
    psutil_snapshot: Path | None = None,
    smartctl_json: list[Path] | None = None,
    timeout: float = 5.0,
    serial_port: str | None = None,
    read_target: Path | None = None,
    limits: dict[str, float] | None = None,
    simulated: bool = False,
) -> ProbeContext:
    if sysfs_root is not None and not sysfs_root.is_dir():
        why = "is not a directory" if sysfs_root.exists() else "does not exist"
        raise typer.BadParameter(f"{sysfs_root} {why}", param_hint="--sysfs-root")
    try:
        return ProbeContext.for_machine(
            sysfs_root,
            psutil_snapshot=psutil_snapshot,
            smartctl_json=list(smartctl_json or []),
            timeout_s=timeout,
            serial_port=serial_port,
            read_target=read_target,
            limits=limits or {},
            simulated=simulated,
        )
    except ProbeProblem as exc:
        raise typer.BadParameter(str(exc)) from exc


def report_json(report: report_pb2.Report) -> str:
    return json_format.MessageToJson(report, preserving_proto_field_name=True, indent=2)


class TerminalFrontEnd:
    """Live progress on stderr and questions for the person at the terminal."""

    def __init__(self, console: Console, interactive: bool) -> None:
        self.console = console
        self.interactive = interactive
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task("checking", total=None)

    def hooks(self, telemetry_total: int) -> Hooks:
        self.progress.update(
            self.task, total=telemetry_total, description="reading sensors and devices"
        )

        def telemetry_done(spec: object, results: list[probe_pb2.ProbeResult]) -> None:
            self.progress.advance(self.task)

        def routine_started(spec: object) -> None:
            name = getattr(spec, "name", "routine")
            self.progress.reset(self.task, total=100, description=name)

        def routine_update(update: routine_pb2.RoutineUpdate) -> None:
            text = f"{update.routine}: {update.message}" if update.message else update.routine
            self.progress.update(self.task, completed=update.percent, description=text)

        return Hooks(telemetry_done, routine_started, routine_update)

    def ask(self, code: str, question: str) -> bool:
        if not self.interactive:
            return False
        self.progress.stop()
        try:
            return Confirm.ask(
                f"[bold]{question}[/bold] Ready?", console=self.console, default=True
            )
        except EOFError:
            return False
        finally:
            self.progress.start()


@app.command()
def check(
    json_out: JsonOpt = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the serialized protobuf Report to FILE.", dir_okay=False),
    ] = None,
    sysfs_root: SysfsRootOpt = None,
    psutil_snapshot: Annotated[
        Path | None,
        typer.Option(
            "--psutil-snapshot",
            help="Folder of a captured psutil snapshot (default: psutil/ beside --sysfs-root).",
            file_okay=False,
            exists=True,
        ),
    ] = None,
    smartctl_json: Annotated[
        list[Path] | None,
        typer.Option(
            "--smartctl-json",
            help="Judge captured `smartctl --json` output instead of running smartctl "
            "(repeatable).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    probe: Annotated[
        list[str] | None, typer.Option("--probe", help="Run only this probe (repeatable).")
    ] = None,
    routines: Annotated[
        bool, typer.Option("--routines", help="Also run the active routines.")
    ] = False,
    serial_port: Annotated[
        str | None,
        typer.Option(
            "--serial-port", help="Port with a loopback plug, for the serial loopback routine."
        ),
    ] = None,
    read_target: Annotated[
        Path | None,
        typer.Option(
            "--read-target", help="File or device to read, for the storage read-speed routine."
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="Time budget of each telemetry probe, seconds."),
    ] = 5.0,
    show_skipped: Annotated[
        bool,
        typer.Option("--show-skipped/--hide-skipped", help="List checks that do not apply here."),
    ] = True,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            "--limit",
            help="Override a probe limit, e.g. battery.min_health_pct=75 "
            "(repeatable; see docs/probes.md).",
        ),
    ] = None,
    simulated_device: Annotated[
        bool,
        typer.Option(
            "--simulated-device",
            help="The --sysfs-root tree is a simulated device that changes while routines "
            "run (benches, tests); without it routines do not watch a captured tree.",
        ),
    ] = False,
) -> None:
    """Check this device's battery, storage, sensors, ports and system, and give a verdict."""
    console = Console(stderr=json_out)
    if out is not None and not out.parent.is_dir():
        raise typer.BadParameter(f"{out.parent} is not a directory", param_hint="--out")
    ctx = _context(
        sysfs_root,
        psutil_snapshot,
        smartctl_json,
        timeout,
        serial_port,
        read_target,
        parse_limits(limit or []),
        simulated_device,
    )
    plan = SelfCheckPlan(tuple(probe or ()), routines)
    try:
        telemetry, _ = plan.select()
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--probe") from None
    front = TerminalFrontEnd(Console(stderr=True), interactive=sys.stdin.isatty())
    ctx.ask = front.ask
    try:
        with front.progress:
            outcome = run_selfcheck(ctx, plan, front.hooks(len(telemetry)))
    except KeyboardInterrupt:
        Console(stderr=True).print("Stopped before any result was ready; nothing was written.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    report = outcome.report
    if out is not None:
        out.write_bytes(report.SerializeToString())
    if json_out:
        sys.stdout.write(report_json(report) + "\n")
    else:
        render_report(console, report, show_skipped=show_skipped)
        if out is not None:
            console.print(f"[dim]Report written to {out}[/dim]")
    if outcome.interrupted:
        Console(stderr=True).print("Interrupted: the report holds what ran before you stopped it.")
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_FAIL if report.overall == FAIL else EXIT_OK)


@app.command("probes")
def list_probes(json_out: JsonOpt = False, sysfs_root: SysfsRootOpt = None) -> None:
    """List every probe, whether it can run here, and why not."""
    ctx = _context(sysfs_root)
    # Telemetry takes milliseconds, so the honest answer is to run it: a probe that
    # only SKIPs here is not supported here, for the reason it gives.
    skipped: dict[str, str] = {}
    for r in run_telemetry(all_probes(TELEMETRY), ctx):
        if r.status == SKIP:
            skipped.setdefault(r.probe, r.evidence)
        else:
            skipped[r.probe] = ""
    rows = []
    for spec in all_probes():
        if spec.kind == TELEMETRY:
            reason = skipped.get(spec.name) or None
        else:
            reason = spec.unsupported_reason(ctx)
        rows.append(
            {
                "name": spec.name,
                "family": spec.family,
                "kind": "routine" if spec.kind == ROUTINE else "telemetry",
                "summary": spec.summary,
                "supported": reason is None,
                "reason": reason or "",
            }
        )
    if json_out:
        import json

        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, expand=True)
    for col in ("probe", "kind", "here", "what it checks"):
        table.add_column(col, overflow="fold")
    for row in rows:
        here = "[green]yes[/green]" if row["supported"] else f"[dim]no: {row['reason']}[/dim]"
        table.add_row(str(row["name"]), str(row["kind"]), here, str(row["summary"]))
    Console().print(table)


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # the last line of defence: a calm message and exit 2
        Console(stderr=True).print(
            f"[red]probelink-agent: internal error:[/red] {type(exc).__name__}: {exc}"
        )
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
