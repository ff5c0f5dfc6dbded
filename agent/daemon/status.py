"""What the running daemon tells `probelink-agent status`: a small JSON file it rewrites.

    board = StatusBoard(state_dir / STATUS_FILE, server="127.0.0.1:50051")
    board.update(link="connected")                  # written now: a state change
    board.acked(["id1", "id2"])                     # written at most once a second
    read_status(state_dir)                          # what `status` shows, spool included

The daemon is the only writer. A status read never takes a lock the daemon waits on:
the file is replaced whole (write a temp file, rename), so a reader sees the old
version or the new one. It is not fsynced — after a power cut the daemon rewrites it
at start — so it costs the daemon nothing worth measuring.

Whether the daemon still runs is not taken from the file (a `kill -9` cannot update
it): `read_status` checks that the pid it names is alive and is a probelink-agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from probelink.agent.spool import Spool, SpoolError

STATUS_FILE = "status.json"
SPOOL_FILE = "spool.db"
# Ack bursts rewrite the file at most this often.
_ACK_WRITE_EVERY_S = 1.0


@dataclass
class DaemonStatus:
    pid: int
    server: str
    started_at: float
    # starting, waiting for the first report, enrolling, connecting, connected,
    # waiting (backing off), stopped
    link: str = "starting"
    link_since: float = 0.0
    device_id: str = ""
    dictionary_id: int = 0
    last_ack_at: float = 0.0
    last_ack_report_id: str = ""
    acked: int = 0
    last_error: str = ""
    next_attempt_at: float = 0.0
    next_report_at: float = 0.0
    last_report_at: float = 0.0
    produced: int = 0


class StatusBoard:
    """The daemon's side: keeps a DaemonStatus and writes it out."""

    def __init__(self, path: Path, server: str) -> None:
        self.path = path
        now = time.time()
        self.status = DaemonStatus(pid=os.getpid(), server=server, started_at=now)
        self.status.link_since = now
        self._written_at = 0.0
        self._flush_pending = False
        self.write()

    def update(self, **changes: Any) -> None:
        """Change fields and write at once (a person may be watching the link state)."""
        if "link" in changes and changes["link"] != self.status.link:
            changes.setdefault("link_since", time.time())
        for key, value in changes.items():
            setattr(self.status, key, value)
        self.write()

    def acked(self, report_ids: list[str]) -> None:
        if not report_ids:
            return
        self.status.acked += len(report_ids)
        self.status.last_ack_at = time.time()
        self.status.last_ack_report_id = report_ids[-1]
        wait = self._written_at + _ACK_WRITE_EVERY_S - time.monotonic()
        if wait <= 0:
            self.write()
        elif not self._flush_pending:
            # A burst's last ack must reach the file too, a moment later.
            self._flush_pending = True
            asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        self.write()

    def write(self) -> None:
        self._written_at = time.monotonic()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        data = json.dumps(asdict(self.status), indent=2).encode() + b"\n"
        # A status that cannot be written must not stop the daemon: it only informs.
        with contextlib.suppress(OSError):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)


def read_status(state_dir: Path) -> dict[str, Any]:
    """Everything `status` shows, as plain JSON-able data; never raises for a bad file."""
    # Every key is always there, so a script can read `link` before the daemon ever ran.
    out: dict[str, Any] = {"state_dir": str(state_dir), "running": False}
    out.update(asdict(DaemonStatus(pid=0, server="", started_at=0.0, link="not running")))
    raw: dict[str, Any] = {}
    path = state_dir / STATUS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        out["problem"] = f"no daemon has run with this state dir ({path} is missing)"
        raw = {}
    except (OSError, ValueError) as err:
        out["problem"] = f"cannot read {path}: {err}"
        raw = {}
    out.update(raw)
    pid = raw.get("pid")
    out["running"] = isinstance(pid, int) and _is_agent(pid)
    if raw and not out["running"]:
        out["link"] = "not running"
    out.update(_spool_numbers(state_dir / SPOOL_FILE))
    return out


def _spool_numbers(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {
            "spool_reports": 0,
            "spool_bytes": 0,
            "evicted": 0,
            "evicted_unreported": 0,
            "rejected": 0,
            "last_rejection": None,
        }
    try:
        # Bounds only matter to put(); reading never evicts.
        with Spool(path, max_bytes=1 << 62, max_reports=1 << 62) as spool:
            reports, size = spool.depth()
            evicted, unreported = spool.evicted()
            rejected, kept = spool.rejected()
    except SpoolError as err:
        return {"spool_problem": str(err)}
    return {
        "spool_reports": reports,
        "spool_bytes": size,
        "evicted": evicted,
        "evicted_unreported": unreported,
        "rejected": rejected,
        "last_rejection": (
            {"report_id": kept[0].report_id, "reason": kept[0].reason, "message": kept[0].message}
            if kept
            else None
        ),
    }


def _is_agent(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"probelink" in cmdline
