"""The daemon's log: one line per event on stderr, as the journal likes it.

    log = daemon_logger()            # logging.Logger "probelink.agent"
    log.warning("cannot reach %s: %s", server, why)

Under systemd (stderr connected to the journal, which systemd announces in
$JOURNAL_STREAM) each line starts with a syslog priority, `<4>` for a warning, and
carries no time of its own: journald stamps it and `journalctl -p warning` filters on
the priority. Anywhere else (a terminal, a test capturing stderr) lines read
"2026-11-25 12:00:01 WARNING cannot reach …". With `--json` each line is one JSON
object: {"time": 1764072001.2, "level": "warning", "message": "cannot reach …"}.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TextIO

LOGGER = "probelink.agent"
_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        # One event, one journal entry: a multi-line message would split into several.
        return f"<{priority}>" + super().format(record).replace("\n", " | ")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line)


def under_journal(stream: TextIO | None = None) -> bool:
    """Whether stderr is the journal's stream (systemd sets JOURNAL_STREAM=dev:ino)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def daemon_logger(level: int = logging.INFO, json_lines: bool = False) -> logging.Logger:
    log = logging.getLogger(LOGGER)
    log.setLevel(level)
    log.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    elif under_journal():
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    log.handlers[:] = [handler]
    return log
