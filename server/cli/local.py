"""`probelink-server run-local`: the main job end to end on this machine, in one command.

    probelink-server run-local                    # what `make run` runs
    probelink-server run-local --json             # one JSON object: report id, summary, commands
    probelink-server run-local --data-dir /tmp/pl \\
        --sysfs-root tests/fixtures/machines/laptop-worn-battery/sys

It starts the server in this process (SQLite in `--data-dir`, plaintext on loopback, a
free port), runs the agent's self-check with `--upload` as a child process — the agent and
the server never import each other — which enrolls with the data dir's `enroll.secret`
on first use and keeps its credential in `<data-dir>/agent`, reads the stored report back
through ReportsService with the data dir's `admin.token` (the road `reports show` takes),
asks for its diagnosis (the road `diagnose` takes) and writes the printable page of it to
`<data-dir>/diagnosis-<report id>.html`, prints a summary, the diagnosis and the commands to
read them again later, and stops the server cleanly.

Exit codes: 0 stored, nothing failed; 1 stored, and a check failed (as `probelink-agent
check`); 2 nothing ran: a bad data dir, a port in use, or the agent could not run the
check; 3 the check ran but the upload or the read-back failed; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table
from rich.text import Text

from probelink.channel import bearer, open_aio_channel
from probelink.diagnosis_text import LANGS, render_diagnosis
from probelink.server.app import ProbelinkServer
from probelink.server.bootstrap import ADMIN_TOKEN_FILE, ENROLL_SECRET_FILE
from probelink.server.cli.client import to_dict
from probelink.server.config import DEFAULT_DATA_DIR, ServeConfig
from probelink.server.errors import ServerError
from probelink.server.render.diagnosis_html import render_diagnosis_html
from probelink.server.render.report_text import category_table, verdict_text
from probelink.server.tls import is_loopback, split_listen
from probelink.v1 import report_pb2, reports_pb2, reports_pb2_grpc, status_pb2

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UPLOAD_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

AGENT_STATE_DIR = "agent"
DEFAULT_LOCAL_LISTEN = "127.0.0.1:0"
READ_BACK_TIMEOUT_S = 10.0
# Variables the agent would read that must not steer it away from the embedded server:
# it serves plaintext on loopback, and its data dir holds the secret and the state.
_AGENT_ENV_DROPPED = (
    "PROBELINK_SERVER",
    "PROBELINK_TLS_CA",
    "PROBELINK_ENROLL_SECRET_FILE",
    "PROBELINK_AGENT_STATE",
)
_TO_LOOK_AT = (status_pb2.STATUS_FAIL, status_pb2.STATUS_WARN, status_pb2.STATUS_ERROR)


class LocalRunFailed(Exception):
    """The run stopped; the message says why and what to do, `code` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class AgentUpload:
    """The agent's own account: its `--json` "upload" block and the report it sent."""

    upload: dict[str, Any]
    sent: report_pb2.Report

    @property
    def report_id(self) -> str:
        return str(self.upload.get("report_id", ""))


@dataclass
class Stored:
    """What one run stored, as the server gave it back."""

    server: str
    data_dir: Path
    store: str
    response: reports_pb2.GetReportResponse
    agent: AgentUpload
    first_start_files: list[Path] = field(default_factory=list)
    # The server's diagnosis of the report (docs/diagnosis.md) and the printable page of it.
    diagnosis: dict[str, Any] = field(default_factory=dict)
    diagnosis_html: Path | None = None

    @property
    def matches_sent(self) -> bool:
        """The server's copy is, field for field, the report the agent says it sent."""
        return self.response.report == self.agent.sent


def run_local(
    data_dir: Annotated[
        Path,
        typer.Option(
            help="Where the SQLite database, admin.token, enroll.secret and the agent's "
            "state (agent/) live; made on first use, reused after."
        ),
    ] = DEFAULT_DATA_DIR,
    listen: Annotated[
        str,
        typer.Option(help="Loopback HOST:PORT for the embedded server (port 0: any free port)."),
    ] = DEFAULT_LOCAL_LISTEN,
    sysfs_root: Annotated[
        Path | None,
        typer.Option(
            "--sysfs-root",
            help="The agent reads this captured sysfs tree instead of this machine's.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    smartctl_json: Annotated[
        list[Path] | None,
        typer.Option(
            "--smartctl-json",
            help="The agent judges this captured `smartctl --json` output (repeatable).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="The diagnosis in en or zh-CN.")] = "en",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Self-check this machine end to end: an embedded server, the agent, the stored report
    and its diagnosis."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    agent_options: list[str] = []
    if sysfs_root is not None:
        agent_options += ["--sysfs-root", str(sysfs_root.resolve())]
    for path in smartctl_json or []:
        agent_options += ["--smartctl-json", str(path.resolve())]
    try:
        if lang not in LANGS:
            raise LocalRunFailed(f"--lang {lang!r}: use one of {', '.join(LANGS)}", EXIT_USAGE)
        check_listen(listen)
        check_data_dir(data_dir)
        stored = asyncio.run(_run(data_dir, listen, agent_options, json_out, err, lang))
    except LocalRunFailed as failed:
        if json_out:
            print(json.dumps({"error": str(failed), "exit_code": failed.code}))
        err.print(f"probelink-server run-local: {failed}", markup=False)
        raise typer.Exit(failed.code) from None
    if json_out:
        print(json.dumps(as_json(stored), indent=2))
    else:
        out = Console(highlight=False, soft_wrap=True)
        if not out.is_terminal:
            # Piped or logged: whole lines rather than evidence folded at 80 columns.
            out = Console(highlight=False, soft_wrap=True, width=max(out.width, 120))
        show(out, stored, lang)
    if not stored.matches_sent:
        # The server must give back exactly what the device signed and sent.
        err.print(
            f"probelink-server run-local: the server's copy of report {stored.agent.report_id} "
            "differs from what the agent sent",
            markup=False,
        )
        raise typer.Exit(EXIT_UPLOAD_FAILED)
    overall = stored.response.summary.overall
    raise typer.Exit(EXIT_FAIL if overall == status_pb2.STATUS_FAIL else EXIT_OK)


def check_data_dir(data_dir: Path) -> None:
    """Make `data_dir` (mode 0700) if missing; LocalRunFailed(2) if it cannot hold the data."""
    if data_dir.exists() and not data_dir.is_dir():
        raise LocalRunFailed(
            f"--data-dir {data_dir} is a file, not a directory: give a directory "
            "(it is made if missing)",
            EXIT_USAGE,
        )
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise LocalRunFailed(
            f"--data-dir {data_dir}: cannot make it ({error.strerror or error}); "
            "give a directory you can write to",
            EXIT_USAGE,
        ) from None
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise LocalRunFailed(
            f"--data-dir {data_dir} is not writable by this user: give a directory you "
            "can write to",
            EXIT_USAGE,
        )


def check_listen(listen: str) -> None:
    """LocalRunFailed(2) unless `listen` is a loopback HOST:PORT (the server is plaintext)."""
    try:
        host, _ = split_listen(listen)
    except ServerError as error:
        raise LocalRunFailed(str(error), EXIT_USAGE) from None
    if not is_loopback(host):
        raise LocalRunFailed(
            f"--listen {listen}: the embedded server speaks plaintext, so it listens on "
            "loopback only; give 127.0.0.1:PORT (or leave --listen out for a free port)",
            EXIT_USAGE,
        )


async def _run(
    data_dir: Path,
    listen: str,
    agent_options: list[str],
    json_out: bool,
    err: Console,
    lang: str = "en",
) -> Stored:
    interrupt = _Interrupt(asyncio.current_task())
    loop = asyncio.get_running_loop()
    # SIGTERM as Ctrl-C (which asyncio turns into a cancel): stop the agent, then the
    # server, then say so. Kept until the very end, so no signal cuts the clean stop.
    loop.add_signal_handler(signal.SIGTERM, interrupt.fire)
    try:
        server = await _start(ServeConfig(listen=listen, data_dir=data_dir, grace_s=5.0))
        try:
            if not json_out:
                _announce(err, server)
            # Before the check: a missing token should cost a second, not a check.
            token = admin_token(data_dir)
            agent = await _check_and_upload(server, data_dir, agent_options, err)
            response, diagnosis = await _read_back(server.address, token, agent.report_id)
            page = data_dir / f"diagnosis-{agent.report_id}.html"
            page.write_text(render_diagnosis_html(diagnosis, lang), encoding="utf-8")
            return Stored(
                server=server.address,
                data_dir=data_dir,
                store=server.store.store.describe(),
                response=response,
                agent=agent,
                first_start_files=list(server.first_start_files),
                diagnosis=diagnosis,
                diagnosis_html=page,
            )
        finally:
            interrupt.ignore()
            await server.stop()
    except asyncio.CancelledError:
        interrupt.handled()
        raise LocalRunFailed(
            "interrupted: the server stopped cleanly; what was stored stays", EXIT_INTERRUPTED
        ) from None
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@dataclass
class _Interrupt:
    """Turns SIGTERM into a cancel of the run, except while the server stops."""

    task: asyncio.Task[Any] | None
    stopping: bool = False

    def fire(self) -> None:
        if self.task is not None and not self.stopping:
            self.task.cancel()

    def ignore(self) -> None:
        self.stopping = True

    def handled(self) -> None:
        # The cancel is answered here, so asyncio.run returns our exit code instead of
        # turning it into KeyboardInterrupt.
        if self.task is not None:
            self.task.uncancel()


async def _start(config: ServeConfig) -> ProbelinkServer:
    try:
        return await ProbelinkServer.start(config)
    except ServerError as error:
        raise LocalRunFailed(f"cannot start the embedded server: {error}", EXIT_USAGE) from None
    except RuntimeError:  # grpc's "Failed to bind to address …", its one cause here
        raise LocalRunFailed(
            f"cannot listen on {config.listen}: the port is taken or not available here "
            "(is another server there?); leave --listen out to take any free port",
            EXIT_USAGE,
        ) from None
    except OSError as error:
        raise LocalRunFailed(
            f"cannot start the embedded server in {config.data_dir}: {error}", EXIT_USAGE
        ) from None


def _announce(err: Console, server: ProbelinkServer) -> None:
    err.print(Text("Probelink: this machine's self-check, end to end", style="bold"))
    err.print(
        f"  server    {server.address} in this process (plaintext, loopback only)", markup=False
    )
    err.print(f"  store     {server.store.store.describe()}", markup=False)
    if server.first_start_files:
        names = " and ".join(str(p) for p in server.first_start_files)
        err.print(f"  first start: wrote {names} (mode 0600)", markup=False)


def agent_argv(server: str, data_dir: Path, agent_options: list[str]) -> list[str]:
    """The agent's command line: this interpreter, so the agent matches the server's code."""
    secret = data_dir / ENROLL_SECRET_FILE
    argv = [sys.executable, "-m", "probelink.agent.cli", "check", "--upload", "--json"]
    argv += ["--server", server, "--state-dir", str(data_dir.resolve() / AGENT_STATE_DIR)]
    # Without the file an enrolled agent still uploads; one that is not enrolled says how.
    if secret.exists():
        argv += ["--enroll-secret-file", str(secret.resolve())]
    return argv + agent_options


async def _check_and_upload(
    server: ProbelinkServer, data_dir: Path, agent_options: list[str], err: Console
) -> AgentUpload:
    """Run the agent as a child process, showing a status line and what it says."""
    env = {k: v for k, v in os.environ.items() if k not in _AGENT_ENV_DROPPED}
    argv = agent_argv(server.address, data_dir, agent_options)
    with err.status("Checking this machine and uploading the report…", spinner="dots"):
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, _ = await asyncio.gather(_read_all(proc.stdout), _relay(proc.stderr, err))
            code = await proc.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await proc.wait()
            raise
    return _agent_outcome(code, out)


async def _read_all(stream: asyncio.StreamReader | None) -> bytes:
    return await stream.read() if stream is not None else b""


async def _relay(stream: asyncio.StreamReader | None, err: Console) -> None:
    """Show what the agent says (enrolled, refused, bad option) as it says it."""
    if stream is None:
        return
    async for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip()
        if line:
            err.print(Text(f"  {line}", style="dim"))


def _agent_outcome(code: int, out: bytes) -> AgentUpload:
    """What the agent printed; LocalRunFailed when it uploaded nothing."""
    if code == EXIT_INTERRUPTED:
        raise LocalRunFailed("interrupted: the agent stopped; nothing was uploaded", code)
    try:
        printed = json.loads(out)
    except ValueError:
        printed = None
    if not isinstance(printed, dict) or not isinstance(printed.get("upload"), dict):
        if code in (EXIT_OK, EXIT_FAIL):
            raise LocalRunFailed(
                f"the agent exited {code} without saying what it uploaded (no JSON on its stdout)",
                EXIT_USAGE,
            )
        raise LocalRunFailed(
            f"the agent could not run the check (exit {code}); its message is above", code
        )
    upload: dict[str, Any] = printed.pop("upload")
    if "error" in upload or not upload.get("report_id"):
        status = upload.get("status", "?")
        raise LocalRunFailed(
            f"the agent checked this machine but the upload failed ({status}): "
            f"{upload.get('error', 'no report id in the answer')}",
            EXIT_UPLOAD_FAILED,
        )
    sent = report_pb2.Report()
    with contextlib.suppress(json_format.ParseError):
        # Unreadable, it compares unequal below: the summary then says so.
        json_format.ParseDict(printed, sent, ignore_unknown_fields=True)
    return AgentUpload(upload, sent)


def admin_token(data_dir: Path) -> str:
    """The data dir's admin token, which reads the report back; LocalRunFailed(2) if gone."""
    path = data_dir / ADMIN_TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        token, problem = "", f"cannot read {path} ({why})"
    else:
        problem = f"{path} is empty"
    if token:
        return token
    raise LocalRunFailed(
        f"{problem}: it holds the admin token that reads the report back, and the server "
        "writes it only on the first start of an empty data dir; give a fresh --data-dir, "
        f"or write an admin token (`probelink-server token create --role admin`) to {path}",
        EXIT_USAGE,
    )


async def _read_back(
    address: str, token: str, report_id: str
) -> tuple[reports_pb2.GetReportResponse, dict[str, Any]]:
    """GetReport and GetDiagnosis as a person would: the admin token, over gRPC, from the
    running server (the roads `reports show` and `diagnose` take)."""
    async with open_aio_channel(address) as channel:
        stub = reports_pb2_grpc.ReportsServiceStub(channel)
        metadata = bearer(token)
        step = "reading it back"
        try:
            response: reports_pb2.GetReportResponse = await stub.GetReport(
                reports_pb2.GetReportRequest(report_id=report_id),
                metadata=metadata,
                timeout=READ_BACK_TIMEOUT_S,
            )
            step = "asking for its diagnosis"
            diagnosis: reports_pb2.GetDiagnosisResponse = await stub.GetDiagnosis(
                reports_pb2.GetDiagnosisRequest(report_id=report_id),
                metadata=metadata,
                timeout=READ_BACK_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as error:
            raise LocalRunFailed(
                f"stored as report {report_id}, but {step} failed "
                f"({error.code().name}): {error.details()}",
                EXIT_UPLOAD_FAILED,
            ) from None
    document: dict[str, Any] = json.loads(diagnosis.diagnosis_json)
    return response, document


def read_again_commands(data_dir: Path, report_id: str) -> list[str]:
    """The shell commands that read this report again once the server runs on its own."""
    server = _server_command()
    here = Path.cwd()
    if data_dir.resolve() == (here / DEFAULT_DATA_DIR).resolve() and (here / "Makefile").is_file():
        serve = "make serve"  # the README's own command, same data dir and port
    else:
        serve = f"{server} serve --data-dir {shlex.quote(str(data_dir))}"
    token = shlex.quote(str(data_dir / ADMIN_TOKEN_FILE))
    return [
        serve,
        f"export PROBELINK_TOKEN=$(cat {token})",
        f"{server} reports show {shlex.quote(report_id)}",
        f"{server} diagnose {shlex.quote(report_id)}",
    ]


def _server_command() -> str:
    """`probelink-server` as this interpreter's environment installed it, short if we can."""
    path = Path(sys.executable).parent / "probelink-server"
    if not path.exists():
        return "probelink-server"
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())
    return shlex.quote(str(path))


def signature_words(summary: reports_pb2.ReportSummary) -> str:
    if summary.signature == reports_pb2.SIGNATURE_VERDICT_VERIFIED:
        key = f" {summary.signing_key}" if summary.signing_key else ""
        return f"verified with the device's key{key}"
    return "not verified: the server stored it without checking a signature"


def result_counts(report: report_pb2.Report) -> str:
    """`22 results: 15 passed · 1 to watch · 0 failed · 0 could not run · 6 do not apply`."""
    tally = {status: 0 for status in status_pb2.Status.values()}
    for result in report.results:
        tally[result.status] += 1
    return (
        f"{len(report.results)} results: {tally[status_pb2.STATUS_PASS]} passed · "
        f"{tally[status_pb2.STATUS_WARN]} to watch · {tally[status_pb2.STATUS_FAIL]} failed · "
        f"{tally[status_pb2.STATUS_ERROR]} could not run · "
        f"{tally[status_pb2.STATUS_SKIP]} do not apply here"
    )


def show(out: Console, stored: Stored, lang: str = "en") -> None:
    """The summary, the diagnosis, and how to read the whole report again."""
    summary, report = stored.response.summary, stored.response.report
    model = " ".join(p for p in (summary.manufacturer, summary.model) if p) or "unknown model"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows: list[tuple[str, str | Text]] = [
        ("verdict", verdict_text(summary.overall)),
        ("results", result_counts(report)),
        ("report", summary.report_id),
        ("device", f"{summary.device_id}  ({model})"),
        ("signature", signature_words(summary)),
        (
            "round trip",
            "the server's copy is the report the agent sent"
            if stored.matches_sent
            else Text("the server's copy DIFFERS from what the agent sent", style="bold red"),
        ),
    ]
    for name, value in rows:
        # Text, not str: what a device sent is its words, never rich markup.
        grid.add_row(name, value if isinstance(value, Text) else Text(value))
    out.print()
    out.print(Text("Stored, and read back from the server", style="bold"))
    out.print(grid)
    to_look_at = [r for r in report.results if r.status in _TO_LOOK_AT]
    if to_look_at:
        out.print()
        out.print(category_table("To look at", to_look_at))
    if stored.diagnosis:
        out.print()
        out.print(Text("诊断" if lang == "zh-CN" else "Diagnosis", style="bold"))
        out.print(render_diagnosis(stored.diagnosis, lang))
    if stored.diagnosis_html is not None:
        out.print()
        out.print(f"Printable diagnosis: {stored.diagnosis_html}", markup=False)
    out.print()
    out.print(
        f"Read it again later (the server has stopped; everything stays in {stored.data_dir}):",
        markup=False,
    )
    for command in read_again_commands(stored.data_dir, summary.report_id):
        out.print(f"  {command}", markup=False)


def as_json(stored: Stored) -> dict[str, Any]:
    summary = stored.response.summary
    return {
        "report_id": summary.report_id,
        "device_id": summary.device_id,
        "server": stored.server,
        "data_dir": str(stored.data_dir.resolve()),
        "store": stored.store,
        "enrolled": bool(stored.agent.upload.get("enrolled")),
        "first_start_files": [str(p) for p in stored.first_start_files],
        "signature_verified": summary.signature == reports_pb2.SIGNATURE_VERDICT_VERIFIED,
        "stored_matches_sent": stored.matches_sent,
        "summary": to_dict(summary),
        "diagnosis": stored.diagnosis,
        "diagnosis_html": str(stored.diagnosis_html.resolve()) if stored.diagnosis_html else None,
        "commands": read_again_commands(stored.data_dir, summary.report_id),
    }
