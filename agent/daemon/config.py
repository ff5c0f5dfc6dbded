"""The daemon's settings: a TOML file, then the command line on top, checked as a whole.

    config = DaemonConfig.load(Path("/etc/probelink/agent.toml"), overrides={"interval_s": 60})
    config.server, config.interval_s, config.spool_max_reports

The file (every key optional except `server`, which may come from --server instead):

    server = "probelink.example:443"
    insecure = false             # plaintext beyond loopback: only on a network you trust
    enroll_secret_file = "/etc/probelink/enroll.secret"
    state_dir = "/var/lib/probelink-agent"

    [telemetry]
    interval_seconds = 3600      # one scheduled report per interval…
    jitter = 0.1                 # …each wait stretched or shrunk by up to ±10 %
    probes = []                  # empty: every telemetry probe
    probe_modules = []           # modules that register a site's own probes
    sysfs_root = ""              # "": this machine; or a captured machine's sysfs tree
    smartctl_json = ""           # "": run smartctl; or a captured `smartctl --json` output

    [privacy]
    salt_file = ""               # personal fields are hashed with it; default: state dir

    [spool]
    max_reports = 10000
    max_megabytes = 64

    [stream]
    window = 64                  # reports in flight on the stream before an ack
    ack_timeout_seconds = 30     # in-flight reports unanswered this long: reconnect
    backoff_initial_seconds = 1
    backoff_max_seconds = 300
    spool_poll_seconds = 5       # how often to look for reports other processes spooled

    [tls]
    ca = "/etc/probelink/ca.pem"
    cert = ""
    key = ""

    [watchdog]
    probe_cpu_seconds = 10       # one probe run in the collector child
    probe_rss_megabytes = 200
    probe_wall_seconds = 120
    skip_hours = 24              # how long a probe the watchdog stopped is skipped
    agent_rss_megabytes = 60     # the daemon itself
    agent_cpu_percent = 20       # over a minute: draining a backlog takes a share
    agent_check_seconds = 10     # how often the daemon looks at itself

Every problem is a ConfigError naming the file and the key, e.g.
"agent.toml: [telemetry] interval_seconds must be a number, not 'hourly'".
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from probelink.agent.daemon.watchdog import MIB
from probelink.agent.privacy import SALT_FILE, SALT_FILE_ENV
from probelink.agent.state import default_state_dir
from probelink.agent.upload import SECRET_FILE_ENV, SERVER_ENV
from probelink.channel import target_problem

CONFIG_ENV = "PROBELINK_AGENT_CONFIG"


class ConfigError(Exception):
    """The settings cannot run a daemon; the message names the file, key and fix."""


@dataclass(frozen=True)
class DaemonConfig:
    server: str
    state_dir: Path
    enroll_secret_file: Path | None = None
    interval_s: float = 3600.0
    jitter: float = 0.1
    probes: tuple[str, ...] = ()
    probe_modules: tuple[str, ...] = ()
    privacy_salt_file: Path | None = None
    sysfs_root: Path | None = None
    smartctl_json: Path | None = None
    spool_max_reports: int = 10_000
    spool_max_bytes: int = 64 * MIB
    window: int = 64
    ack_timeout_s: float = 30.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    spool_poll_s: float = 5.0
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    probe_cpu_s: float = 10.0
    probe_rss_bytes: int = 200 * MIB
    probe_wall_s: float = 120.0
    skip_s: float = 24 * 3600.0
    agent_rss_bytes: int = 60 * MIB
    agent_cpu_percent: float = 20.0
    agent_check_s: float = 10.0
    # Plaintext to a server beyond loopback (the server's own rule, from this side).
    insecure: bool = False
    # Where the settings came from, for messages.
    source: str = "the command line"

    @classmethod
    def load(
        cls,
        path: Path | None,
        overrides: dict[str, Any] | None = None,
        environ: dict[str, str] | None = None,
    ) -> DaemonConfig:
        """The file's settings (if any), the environment's, then `overrides` on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        source = "the command line"
        if path is not None:
            values = _read_file(path)
            source = str(path)
        if "server" not in values and env.get(SERVER_ENV):
            values["server"] = env[SERVER_ENV]
        if "enroll_secret_file" not in values and env.get(SECRET_FILE_ENV):
            values["enroll_secret_file"] = Path(env[SECRET_FILE_ENV])
        if "privacy_salt_file" not in values and env.get(SALT_FILE_ENV):
            values["privacy_salt_file"] = Path(env[SALT_FILE_ENV])
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = value
        if not values.get("server"):
            raise ConfigError(
                f"no server to connect to: give --server HOST:PORT, set {SERVER_ENV}, "
                'or put server = "HOST:PORT" in the config file'
            )
        if "state_dir" not in values:
            values["state_dir"] = default_state_dir(dict(env))
        config = cls(source=source, **values)
        config.check()
        return config

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work together."""
        problem = target_problem(self.server)
        if problem is not None:
            raise ConfigError(problem)
        if not str(self.state_dir):
            raise ConfigError(f"{self.source}: state_dir is empty: name a directory")
        for attr in (
            "interval_s",
            "jitter",
            "ack_timeout_s",
            "backoff_initial_s",
            "backoff_max_s",
            "spool_poll_s",
            "probe_cpu_s",
            "probe_wall_s",
            "skip_s",
            "agent_cpu_percent",
            "agent_check_s",
        ):
            if not math.isfinite(getattr(self, attr)):
                raise ConfigError(f"{self.source}: {attr} must be a finite number")
        if self.tls_ca is None and self.tls_cert is None and not self.insecure:
            host = self.server.rpartition(":")[0].strip("[]")
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise ConfigError(
                    f"{self.server} is not on this machine and no TLS is configured: the "
                    "enroll secret and the device credential would cross the network in "
                    "the clear. Give [tls] ca (--tls-ca), or --insecure on a network "
                    "you trust"
                )
        at_least = (
            ("interval_s", "[telemetry] interval_seconds / --interval", 1.0),
            ("ack_timeout_s", "[stream] ack_timeout_seconds", 0.1),
            ("backoff_initial_s", "[stream] backoff_initial_seconds", 0.01),
            ("spool_poll_s", "[stream] spool_poll_seconds", 0.05),
            ("probe_cpu_s", "[watchdog] probe_cpu_seconds", 0.1),
            ("probe_wall_s", "[watchdog] probe_wall_seconds", 0.1),
            ("skip_s", "[watchdog] skip_hours", 0.0),
            ("agent_cpu_percent", "[watchdog] agent_cpu_percent", 0.01),
            ("agent_check_s", "[watchdog] agent_check_seconds", 0.05),
        )
        for attr, name, low in at_least:
            if getattr(self, attr) < low:
                raise ConfigError(f"{self.source}: {name} must be at least {low}")
        if not 0 <= self.jitter < 1:
            raise ConfigError(
                f"{self.source}: [telemetry] jitter must be a fraction from 0 up to (not "
                f"including) 1, e.g. 0.1 for ±10 %, not {self.jitter}"
            )
        if self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError(
                f"{self.source}: [stream] backoff_max_seconds ({self.backoff_max_s}) is below "
                f"backoff_initial_seconds ({self.backoff_initial_s})"
            )
        for attr, name in (
            ("spool_max_reports", "[spool] max_reports"),
            ("spool_max_bytes", "[spool] max_megabytes"),
            ("window", "[stream] window"),
            ("probe_rss_bytes", "[watchdog] probe_rss_megabytes"),
            ("agent_rss_bytes", "[watchdog] agent_rss_megabytes"),
        ):
            if getattr(self, attr) < 1:
                raise ConfigError(f"{self.source}: {name} must be at least 1")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError(
                "tls cert and key go together (a client certificate and its key): give both"
            )
        for name, file in (
            ("enroll secret file", self.enroll_secret_file),
            ("TLS CA", self.tls_ca),
            ("TLS certificate", self.tls_cert),
            ("TLS key", self.tls_key),
            ("smartctl JSON", self.smartctl_json),
        ):
            if file is not None and not file.is_file():
                raise ConfigError(f"the {name} {file} does not exist (or is not a file)")
        if self.sysfs_root is not None and not self.sysfs_root.is_dir():
            raise ConfigError(f"the sysfs root {self.sysfs_root} is not a directory")

    @property
    def salt_file(self) -> Path:
        """The privacy salt: the deployment's shared file, or one in the state dir."""
        return self.privacy_salt_file or self.state_dir / SALT_FILE

    def as_json(self) -> dict[str, object]:
        return {
            f.name: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for f in fields(self)
            if (v := getattr(self, f.name)) is not None
        }


# (table, key) -> (attribute, kind, scale). Kinds say what a person may write.
_KEYS: dict[tuple[str, str], tuple[str, str, float]] = {
    ("", "server"): ("server", "str", 1),
    ("", "state_dir"): ("state_dir", "path", 1),
    ("", "enroll_secret_file"): ("enroll_secret_file", "path", 1),
    ("", "insecure"): ("insecure", "bool", 1),
    ("telemetry", "interval_seconds"): ("interval_s", "number", 1),
    ("telemetry", "jitter"): ("jitter", "number", 1),
    ("telemetry", "probes"): ("probes", "names", 1),
    ("telemetry", "probe_modules"): ("probe_modules", "names", 1),
    ("privacy", "salt_file"): ("privacy_salt_file", "path", 1),
    ("telemetry", "sysfs_root"): ("sysfs_root", "path", 1),
    ("telemetry", "smartctl_json"): ("smartctl_json", "path", 1),
    ("spool", "max_reports"): ("spool_max_reports", "int", 1),
    ("spool", "max_megabytes"): ("spool_max_bytes", "int", MIB),
    ("stream", "window"): ("window", "int", 1),
    ("stream", "ack_timeout_seconds"): ("ack_timeout_s", "number", 1),
    ("stream", "backoff_initial_seconds"): ("backoff_initial_s", "number", 1),
    ("stream", "backoff_max_seconds"): ("backoff_max_s", "number", 1),
    ("stream", "spool_poll_seconds"): ("spool_poll_s", "number", 1),
    ("tls", "ca"): ("tls_ca", "path", 1),
    ("tls", "cert"): ("tls_cert", "path", 1),
    ("tls", "key"): ("tls_key", "path", 1),
    ("watchdog", "probe_cpu_seconds"): ("probe_cpu_s", "number", 1),
    ("watchdog", "probe_rss_megabytes"): ("probe_rss_bytes", "int", MIB),
    ("watchdog", "probe_wall_seconds"): ("probe_wall_s", "number", 1),
    ("watchdog", "skip_hours"): ("skip_s", "number", 3600),
    ("watchdog", "agent_rss_megabytes"): ("agent_rss_bytes", "int", MIB),
    ("watchdog", "agent_cpu_percent"): ("agent_cpu_percent", "number", 1),
    ("watchdog", "agent_check_seconds"): ("agent_check_s", "number", 1),
}
_TABLES = {table for table, _ in _KEYS if table}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"the config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the config file {path}: {err}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    values: dict[str, Any] = {}
    for table, key, value in _entries(path, data):
        where = f"{path}: " + (f"[{table}] {key}" if table else key)
        if (table, key) not in _KEYS:
            known = ", ".join(sorted(k for t, k in _KEYS if t == table))
            raise ConfigError(f"{where} is not a setting (known here: {known})")
        attr, kind, scale = _KEYS[(table, key)]
        values[attr] = _convert(where, value, kind, scale, path.parent)
    return values


def _entries(path: Path, data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in _TABLES:
                raise ConfigError(
                    f"{path}: [{key}] is not a section (known: {', '.join(sorted(_TABLES))})"
                )
            out += [(key, inner, v) for inner, v in value.items()]
        else:
            out.append(("", key, value))
    return out


def _convert(where: str, value: Any, kind: str, scale: float, base: Path) -> Any:
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if kind == "path":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a path in quotes, not {value!r}")
        if not value:
            return None
        # A relative path is relative to the file, as a person reading it would expect.
        return (base / Path(value).expanduser()).absolute()
    if kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where} must be a list of probe names, not {value!r}")
        return tuple(value)
    # bool is an int in Python; `true` is never a number of seconds.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, not {value!r}")
    if kind == "int":
        if value != int(value):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        return int(value * scale)
    return float(value) * scale
