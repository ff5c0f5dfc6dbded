"""`probelink-agent`: the device side's commands.

    probelink-agent check                       # self-check this machine
    probelink-agent check --json                # the report as JSON
    probelink-agent check --sysfs-root tests/fixtures/machines/laptop-worn-battery/sys
    probelink-agent check --upload --server 127.0.0.1:50051 --enroll-secret-file enroll.secret
    probelink-agent probes                      # what can run here, and why not
    probelink-agent advisories [--json]         # what the service network told this device

Exit codes of `check`: 0 nothing failed, 1 a check failed, 2 usage or internal error,
3 checked (the verdict is shown) but the upload failed, 130 interrupted (the report of
what ran is still written).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf import json_format
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
from rich.prompt import Confirm

from probelink.agent import advisories_cli
from probelink.agent.advisories import KeptAdvisory
from probelink.agent.privacy import SALT_FILE, SALT_FILE_ENV, PrivacyFilter, load_or_create_salt
from probelink.agent.render import render_report
from probelink.agent.selfcheck import Hooks, SelfCheckPlan, run_selfcheck
from probelink.agent.state import STATE_ENV, StateError, daemon_state_dir, default_state_dir
from probelink.agent.upload import (
    DEFAULT_SERVER,
    SECRET_FILE_ENV,
    SERVER_ENV,
    TLS_CA_ENV,
    UploadFailed,
    UploadOutcome,
    UploadPlan,
    UploadSetupError,
    upload_report,
)
from probelink.diagnosis_text import LANGS, render_diagnosis
from probelink.probes.context import ProbeContext
from probelink.probes.errors import ProbeProblem
from probelink.probes.registry import ROUTINE, TELEMETRY, all_probes
from probelink.probes.results import FAIL, SKIP
from probelink.probes.runner import run_telemetry
from probelink.v1 import probe_pb2, report_pb2, routine_pb2

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UPLOAD_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

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
    upload: Annotated[
        bool,
        typer.Option(
            "--upload",
            help="Send the report to a Probelink server (enrolls this device on first use), "
            "personal fields hashed or dropped; with --json the report printed is the one "
            "sent. Exit code 3: checked, but the upload failed.",
        ),
    ] = False,
    server: Annotated[
        str, typer.Option("--server", envvar=SERVER_ENV, help="The server's HOST:PORT.")
    ] = DEFAULT_SERVER,
    enroll_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--enroll-secret-file",
            envvar=SECRET_FILE_ENV,
            help="File holding the enroll secret an admin handed out; needed to enroll "
            "(first upload, or after the server refused this device's credential).",
            dir_okay=False,
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar=STATE_ENV,
            help="Where the device credential and dictionary are kept "
            "(default: $XDG_STATE_HOME/probelink-agent or ~/.local/state/probelink-agent).",
            file_okay=False,
        ),
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            "--tls-ca", envvar=TLS_CA_ENV, help="Use TLS, trusting this CA for the server (PEM)."
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="Client certificate, when the server wants mTLS."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The client certificate's key.")
    ] = None,
    privacy_salt_file: Annotated[
        Path | None,
        typer.Option(
            "--privacy-salt-file",
            envvar=SALT_FILE_ENV,
            help="The salt personal fields are hashed with before upload; give every "
            "device of a deployment the same file (default: one made in --state-dir).",
            dir_okay=False,
        ),
    ] = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="With --upload: print exactly what would be sent (personal fields hashed "
            "or dropped) and send it only if you say yes at the terminal.",
        ),
    ] = False,
    lang: Annotated[
        str,
        typer.Option(
            "--lang",
            help="The language of the server's diagnosis and of advisories: en or zh-CN.",
        ),
    ] = "en",
) -> None:
    """Check this device's battery, storage, sensors, ports and system, and give a verdict."""
    console = Console(stderr=json_out)
    if lang not in LANGS:
        raise typer.BadParameter(f"{lang!r}: use one of {', '.join(LANGS)}", param_hint="--lang")
    if out is not None and not out.parent.is_dir():
        raise typer.BadParameter(f"{out.parent} is not a directory", param_hint="--out")
    upload_plan = None
    privacy: PrivacyFilter | None = None
    if preview and not upload:
        raise typer.BadParameter("--preview shows what --upload would send: add --upload")
    if upload:
        try:
            # Before any probe runs: a missing secret should cost a second, not a check.
            upload_plan = UploadPlan.from_options(
                server,
                state_dir or default_state_dir(),
                enroll_secret_file,
                tls_ca,
                tls_cert,
                tls_key,
            )
        except UploadSetupError as err:
            raise typer.BadParameter(str(err), param_hint="--upload") from None
        salt_path = privacy_salt_file or upload_plan.state.root / SALT_FILE
        try:
            privacy = PrivacyFilter(load_or_create_salt(salt_path))
        except StateError as err:
            raise typer.BadParameter(str(err), param_hint="--privacy-salt-file") from None
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
    if not json_out:
        render_report(console, report, show_skipped=show_skipped)
        if out is not None:
            console.print(f"[dim]Report written to {out}[/dim]")
    # What the service network told this device (kept by the daemon), shown last.
    advisories = advisories_cli.for_check(state_dir or daemon_state_dir())
    if outcome.interrupted:
        if json_out:
            sys.stdout.write(_check_json(report, advisories) + "\n")
        note = " It was not uploaded." if upload_plan is not None else ""
        Console(stderr=True).print(
            f"Interrupted: the report holds what ran before you stopped it.{note}"
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    verdict_code = EXIT_FAIL if report.overall == FAIL else EXIT_OK
    if upload_plan is None or privacy is None:
        if json_out:
            sys.stdout.write(_check_json(report, advisories) + "\n")
        else:
            _show_advisories(console, advisories, lang)
        raise typer.Exit(verdict_code)
    # What leaves the device: the same report with every field the contract marks
    # personal hashed (keyed by the salt) or dropped. Local output keeps the original.
    outgoing = privacy.apply(report)
    if preview and not _confirmed(outgoing, upload_plan.server, json_out):
        raise typer.Exit(verdict_code)
    failed = _upload(outgoing, upload_plan, json_out, console, advisories, lang)
    if not json_out:
        _show_advisories(console, advisories, lang)
    raise typer.Exit(failed or verdict_code)


def _check_json(report: report_pb2.Report, advisories: list[KeptAdvisory]) -> str:
    """The report's own JSON object with the unacknowledged advisories as one more key."""
    printed = json.loads(report_json(report))
    printed["advisories"] = advisories_cli.advisories_json(advisories)
    return json.dumps(printed, indent=2, ensure_ascii=False)


def _show_advisories(console: Console, advisories: list[KeptAdvisory], lang: str) -> None:
    """Under a short heading after everything else; nothing at all when there are none."""
    if advisories:
        console.print()
        advisories_cli.print_advisories(console, advisories, lang=lang, heading=True)


def _confirmed(outgoing: report_pb2.Report, server: str, json_out: bool) -> bool:
    """Print exactly what would be sent; True if the person at the terminal says send."""
    sys.stdout.write(report_json(outgoing) + "\n")
    sys.stdout.flush()
    errors = Console(stderr=True, highlight=False)
    if not sys.stdin.isatty():
        errors.print(f"Preview only: nothing was sent to {server}.", markup=False)
        return False
    answer = typer.confirm(f"Send this report to {server}?", default=False, err=True)
    if not answer:
        errors.print("Not sent.", markup=False)
    return answer


def _upload(
    report: report_pb2.Report,
    plan: UploadPlan,
    json_out: bool,
    console: Console,
    advisories: list[KeptAdvisory],
    lang: str,
) -> int | None:
    """Upload and say how it went; EXIT_UPLOAD_FAILED when it did not, else None."""
    errors = Console(stderr=True, highlight=False)
    done: UploadOutcome | None = None
    failed: UploadFailed | None = None
    try:
        done = upload_report(
            report, plan, say=lambda text: errors.print(text, markup=False, soft_wrap=True)
        )
    except UploadFailed as err:
        failed = err
    if json_out:
        # The report's own JSON object with one more key: readers of the output without
        # --upload still find every field where it was.
        printed = json.loads(report_json(report))
        if done is not None:
            printed["upload"] = done.as_json()
        elif failed is not None:
            printed["upload"] = {
                "server": plan.server,
                "error": str(failed),
                "status": failed.status,
            }
        printed["advisories"] = advisories_cli.advisories_json(advisories)
        sys.stdout.write(json.dumps(printed, indent=2) + "\n")
    elif done is not None:
        how = "already stored" if done.duplicate else "stored"
        console.print(
            f"Uploaded to {done.server} as report {done.report_id} ({how})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        _show_diagnosis(console, done, lang)
    if failed is None:
        return None
    errors.print(
        f"probelink-agent: upload failed ({failed.status}): {failed}", markup=False, soft_wrap=True
    )
    return EXIT_UPLOAD_FAILED


def _show_diagnosis(console: Console, done: UploadOutcome, lang: str) -> None:
    """The server's diagnosis of what was uploaded, or a calm note why there is none."""
    if done.diagnosis is None:
        Console(stderr=True, highlight=False).print(
            f"No diagnosis: {done.diagnosis_problem}", style="dim", markup=False
        )
        return
    try:
        shown = render_diagnosis(done.diagnosis, lang)
    except ValueError as err:  # a server of another version: the report is stored anyway
        Console(stderr=True, highlight=False).print(
            f"Cannot show the server's diagnosis: {err}", style="dim", markup=False
        )
        return
    console.print()
    console.print(
        "诊断结果（服务端）" if lang == "zh-CN" else "The service network's diagnosis",
        style="bold",
    )
    console.print(shown)


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


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def run_daemon(ctx: typer.Context) -> None:
    """The daemon: stay connected, send scheduled telemetry, lose no report (--help)."""
    # `probelink-agent run` is dispatched before typer loads (probelink.agent.entry);
    # this command is what `python -m probelink.agent.cli run` and the help list see.
    from probelink.agent.daemon.cli import main as daemon_main

    raise typer.Exit(daemon_main(list(ctx.args)))


EXIT_NOT_RUNNING = 3


@app.command("status")
def status(
    json_out: JsonOpt = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar=STATE_ENV,
            help="The daemon's state dir (default: $PROBELINK_AGENT_STATE, XDG state).",
        ),
    ] = None,
) -> None:
    """The daemon's link, spool depth, last ack, evictions. Exit 3 when it is not running."""
    from probelink.agent.daemon.status import read_status

    info = read_status(state_dir or daemon_state_dir())
    if json_out:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        _print_status(info)
    raise typer.Exit(EXIT_OK if info["running"] else EXIT_NOT_RUNNING)


def _print_status(info: dict[str, object]) -> None:
    import time

    from rich.markup import escape
    from rich.table import Table

    def ago(key: str) -> str:
        when = info.get(key)
        if not isinstance(when, int | float) or when <= 0:
            return "never"
        seconds = max(0, int(time.time() - when))
        text = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"
        return f"{text} ago" if when <= time.time() else f"in {text}"

    console = Console()
    if info.get("problem"):
        console.print(str(info["problem"]), markup=False)
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    running = bool(info["running"])
    link = str(info.get("link", "unknown"))
    if running:
        table.add_row("daemon", f"running (pid {info.get('pid')})")
        table.add_row(
            "link", escape(f"{link} to {info.get('server', '?')}, since {ago('link_since')}")
        )
        if info.get("next_attempt_at") and link == "waiting":
            table.add_row("next attempt", ago("next_attempt_at"))
    else:
        table.add_row("daemon", "[yellow]not running[/yellow]")
    if info.get("device_id"):
        table.add_row("device", str(info["device_id"]))
    table.add_row(
        "spool", f"{info.get('spool_reports', 0)} reports, {info.get('spool_bytes', 0)} bytes"
    )
    table.add_row("last ack", f"{ago('last_ack_at')} {info.get('last_ack_report_id', '')}")
    table.add_row("last report", ago("last_report_at"))
    if running:
        table.add_row("next report", ago("next_report_at"))
    evicted = info.get("evicted", 0)
    untold = info.get("evicted_unreported", 0)
    if evicted:
        told = f"; {untold} not yet told to the server" if untold else ", all told to the server"
        table.add_row("evicted", f"{evicted} (the spool was full){told}")
    else:
        table.add_row("evicted", "none")
    rejected = info.get("rejected", 0)
    last = info.get("last_rejection")
    if rejected and isinstance(last, dict):
        table.add_row(
            "refused",
            f"[red]{rejected}[/red]; last {escape(str(last['report_id']))}: "
            f"{escape(str(last['reason']))}",
        )
    if info.get("last_error") and link != "connected":
        # The server's words: never markup.
        table.add_row("last error", escape(str(info["last_error"])))
    if info.get("spool_problem"):
        table.add_row("spool", f"[red]{escape(str(info['spool_problem']))}[/red]")
    console.print(table)


app.add_typer(advisories_cli.app, name="advisories")


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
