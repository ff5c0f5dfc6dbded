"""`probelink-agent run`: the daemon's command line (argparse: the daemon stays light).

    probelink-agent run --server 127.0.0.1:50051 --enroll-secret-file enroll.secret
    probelink-agent run --config /etc/probelink/agent.toml
    probelink-agent run --config agent.toml --interval 60 --json

The rest of `probelink-agent` uses typer and rich; the daemon imports neither (a few
MiB of resident memory for as long as the device runs), so `probelink.agent.entry`
sends `run` here before anything else is imported. Options on the command line
override the config file's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from probelink.agent.daemon.config import CONFIG_ENV, ConfigError, DaemonConfig
from probelink.agent.daemon.logs import daemon_logger
from probelink.agent.daemon.memory import cap_malloc_arenas
from probelink.agent.daemon.run import EXIT_SETUP, Daemon, SetupError
from probelink.agent.daemon.watchdog import MIB


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="probelink-agent run",
        description="Keep this device connected to a Probelink server: enroll once, send "
        "scheduled telemetry, keep every report in a durable spool until the server acks it.",
    )
    p.add_argument("--config", type=Path, help=f"a TOML config file (or ${CONFIG_ENV})")
    p.add_argument("--server", help="HOST:PORT of the server (or $PROBELINK_SERVER)")
    p.add_argument("--enroll-secret-file", type=Path, help="the enroll secret, to enroll once")
    p.add_argument("--state-dir", type=Path, help="credential, key, spool (files 0600)")
    p.add_argument("--interval", type=float, dest="interval_s", help="seconds between reports")
    p.add_argument("--jitter", type=float, help="fraction each interval varies by, e.g. 0.1")
    p.add_argument("--probe", action="append", dest="probes", help="only this probe (repeat)")
    p.add_argument("--sysfs-root", type=Path, help="probe a captured machine instead")
    p.add_argument("--smartctl-json", type=Path, help="a captured `smartctl --json` output")
    p.add_argument("--spool-max-reports", type=int, help="spool bound by count")
    p.add_argument("--spool-max-mb", type=int, help="spool bound by size, MiB")
    p.add_argument("--window", type=int, help="reports in flight before an ack")
    p.add_argument("--ack-timeout", type=float, dest="ack_timeout_s", help="seconds")
    p.add_argument("--backoff-initial", type=float, dest="backoff_initial_s", help="seconds")
    p.add_argument("--backoff-max", type=float, dest="backoff_max_s", help="seconds")
    p.add_argument(
        "--spool-poll",
        type=float,
        dest="spool_poll_s",
        help="seconds between looks for reports other processes spooled",
    )
    p.add_argument(
        "--insecure",
        action="store_const",
        const=True,
        help="allow plaintext to a server beyond loopback (a network you trust)",
    )
    p.add_argument("--tls-ca", type=Path)
    p.add_argument("--tls-cert", type=Path)
    p.add_argument("--tls-key", type=Path)
    p.add_argument("--json", action="store_true", help="log one JSON object per line")
    p.add_argument("--check-config", action="store_true", help="print the settings and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config_path = args.config
    if config_path is None:
        import os

        config_path = Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None
    overrides = {
        key: getattr(args, key)
        for key in (
            "server",
            "enroll_secret_file",
            "state_dir",
            "interval_s",
            "jitter",
            "sysfs_root",
            "smartctl_json",
            "spool_max_reports",
            "window",
            "ack_timeout_s",
            "backoff_initial_s",
            "backoff_max_s",
            "spool_poll_s",
            "tls_ca",
            "tls_cert",
            "tls_key",
            "insecure",
        )
    }
    if args.probes:
        overrides["probes"] = tuple(args.probes)
    if args.spool_max_mb is not None:
        overrides["spool_max_bytes"] = args.spool_max_mb * MIB
    try:
        config = DaemonConfig.load(config_path, overrides)
    except ConfigError as err:
        print(f"probelink-agent run: {err}", file=sys.stderr)
        return EXIT_SETUP
    if args.check_config:
        print(json.dumps(config.as_json(), indent=2))
        return 0
    cap_malloc_arenas()
    log = daemon_logger(json_lines=args.json)
    try:
        daemon = Daemon(config, log)
    except SetupError as err:
        log.error("cannot start: %s", err)
        return EXIT_SETUP
    return asyncio.run(daemon.run())


if __name__ == "__main__":
    sys.exit(main())
