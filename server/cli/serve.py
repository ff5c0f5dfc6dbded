"""`probelink-server serve`: run the server until SIGTERM or Ctrl-C, then stop cleanly.

What an operator must see while it runs (a refused signature, a failed stream) is logged
to stderr, one line each with its time, level and source: journald and `docker logs`
take it as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from probelink import __version__
from probelink.server.app import ProbelinkServer
from probelink.server.config import DEFAULT_DATA_DIR, DEFAULT_LISTEN, ServeConfig, TlsConfig
from probelink.server.errors import ServerError
from probelink.server.tls import is_loopback, split_listen

EXIT_FAILED = 1
EXIT_USAGE = 2
_LOG_HANDLER = "probelink-serve-stderr"


def serve(
    listen: Annotated[
        str, typer.Option(help="HOST:PORT to listen on (port 0: any free port).")
    ] = DEFAULT_LISTEN,
    data_dir: Annotated[
        Path, typer.Option(help="Where the SQLite database, admin.token and enroll.secret live.")
    ] = DEFAULT_DATA_DIR,
    db: Annotated[
        str | None,
        typer.Option(
            help="Database: a SQLite path, or postgresql://user@host/db. Default: in --data-dir."
        ),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate chain (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="Require client certificates signed by this CA (mTLS).")
    ] = None,
    insecure: Annotated[
        bool, typer.Option(help="Allow plaintext on a non-loopback address (behind a TLS proxy).")
    ] = False,
    metrics_listen: Annotated[
        str | None, typer.Option(help="HOST:PORT for Prometheus metrics (/metrics).")
    ] = None,
    max_report_bytes: Annotated[
        int, typer.Option(help="The largest report a frame may declare, in bytes.")
    ] = 1 << 20,
    dict_train_after: Annotated[
        int, typer.Option(help="Train a zstd dictionary once this many reports arrived (0: never).")
    ] = 1000,
    dict_retrain_every: Annotated[
        float, typer.Option(help="Seconds between automatic dictionaries after the first.")
    ] = 24 * 3600.0,
    grace: Annotated[
        float, typer.Option(help="Seconds SIGTERM waits for in-flight reports and streams.")
    ] = 10.0,
    port_file: Annotated[
        Path | None, typer.Option(help="Write the bound port here once listening.")
    ] = None,
    rules_dir: Annotated[
        Path | None,
        typer.Option(
            help="An operator's rule directory (*.toml), judged with the shipped rules; a "
            "rule with a shipped rule's id replaces it. `rules check DIR` validates it."
        ),
    ] = None,
    currency: Annotated[
        str,
        typer.Option(
            help="Quote prices in this ISO 4217 currency when a device's region is unknown."
        ),
    ] = "USD",
    advisory_horizon_days: Annotated[
        float,
        typer.Option(help="A trend crossing its limit within this many days raises an advisory."),
    ] = 90.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print events as JSON lines.")] = False,
) -> None:
    """Run the server: gRPC gateway, storage, health, reflection and metrics."""
    err = Console(stderr=True)
    _log_to_stderr()
    if (tls_cert is None) != (tls_key is None):
        err.print("[red]--tls-cert and --tls-key go together[/red]")
        raise typer.Exit(EXIT_USAGE)
    if tls_client_ca is not None and tls_cert is None:
        err.print("[red]--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS first)[/red]")
        raise typer.Exit(EXIT_USAGE)
    if max_report_bytes < 1024:
        err.print("[red]--max-report-bytes must be at least 1024[/red]")
        raise typer.Exit(EXIT_USAGE)
    if not (advisory_horizon_days > 0 and math.isfinite(advisory_horizon_days)):
        err.print("[red]--advisory-horizon-days must be a number of days above 0[/red]")
        raise typer.Exit(EXIT_USAGE)
    tls = TlsConfig(tls_cert, tls_key, tls_client_ca) if tls_cert and tls_key else None
    config = ServeConfig(
        listen=listen,
        data_dir=data_dir,
        db=db,
        tls=tls,
        insecure=insecure,
        metrics_listen=metrics_listen,
        max_report_bytes=max_report_bytes,
        dict_train_after=dict_train_after,
        dict_retrain_every_s=dict_retrain_every,
        grace_s=grace,
        port_file=port_file,
        rules_dir=rules_dir,
        currency=currency.upper(),
        advisory_horizon_days=advisory_horizon_days,
    )
    raise typer.Exit(asyncio.run(_run(config, json_out, err)))


def _log_to_stderr() -> None:
    """The server's own log lines (the `probelink` loggers, INFO and up) on stderr."""
    logger = logging.getLogger("probelink")
    logger.setLevel(logging.INFO)
    if any(handler.get_name() == _LOG_HANDLER for handler in logger.handlers):
        return  # serve ran before in this process (tests): one line per event, not two
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_LOG_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)


async def _run(config: ServeConfig, json_out: bool, err: Console) -> int:
    try:
        server = await ProbelinkServer.start(config)
    except ServerError as error:
        # Text, not markup: a rule file's message quotes TOML such as [[rule]].
        err.print(Text.assemble(("cannot start: ", "red"), str(error)), soft_wrap=True)
        return EXIT_USAGE
    except RuntimeError as error:  # grpc: "Failed to bind to address …"
        err.print(
            f"[red]cannot listen on {config.listen}:[/red] {error} (is another server there?)"
        )
        return EXIT_FAILED
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _announce(server, json_out)
    await stop.wait()
    if not json_out:
        err.print("stopping: finishing in-flight reports…")
    await server.stop()
    _say(json_out, {"event": "stopped"}, "stopped cleanly")
    return 0


def _announce(server: ProbelinkServer, json_out: bool) -> None:
    config = server.config
    host, _ = split_listen(config.listen)
    store = server.store.store.describe()
    metrics = (
        f"http://{split_listen(config.metrics_listen)[0]}:{server.metrics_port}/metrics"
        if config.metrics_listen
        else None
    )
    if json_out:
        print(
            json.dumps(
                {
                    "event": "listening",
                    "version": __version__,
                    "address": server.address,
                    "port": server.port,
                    "tls": config.tls is not None,
                    "mtls": config.tls is not None and config.tls.client_ca is not None,
                    "store": store,
                    "metrics": metrics,
                    "first_start_files": [str(p) for p in server.first_start_files],
                    "admin_token_file": str(config.data_dir / "admin.token"),
                    "enroll_secret_file": str(config.data_dir / "enroll.secret"),
                }
            ),
            flush=True,
        )
        return
    # soft_wrap: paths stay whole on one line, to copy and paste.
    out = Console(highlight=False, soft_wrap=True)
    if config.tls is None:
        security = "plaintext, loopback only" if is_loopback(host) else "plaintext (--insecure)"
    else:
        security = "TLS + client certificates" if config.tls.client_ca else "TLS"
    out.print(f"[bold]Probelink server {__version__}[/bold]")
    out.print(f"  listening  {server.address}  ({security})")
    out.print(f"  store      {store}")
    if metrics:
        out.print(f"  metrics    {metrics}")
    out.print("  health     grpc.health.v1.Health: SERVING · reflection on")
    if server.first_start_files:
        token, secret = server.first_start_files
        out.print(
            f"First start: the admin token is in [bold]{token}[/bold] and the default "
            f"enroll secret in [bold]{secret}[/bold] (mode 0600)."
        )
    out.print("Ctrl-C or SIGTERM stops it cleanly.", style="dim")


def _say(json_out: bool, event: dict[str, object], text: str) -> None:
    if json_out:
        print(json.dumps(event), flush=True)
    else:
        Console(stderr=True).print(text)
