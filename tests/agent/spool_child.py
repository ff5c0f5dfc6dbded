"""A child process for the spool's crash tests: it writes or acks until it is killed.

    python tests/agent/spool_child.py put  SPOOL PREFIX   # put PREFIX-000000, -000001, …
    python tests/agent/spool_child.py ack  SPOOL          # ack every pending report, oldest first

It prints "ready" once the spool is open, then one line per finished call
("put-returned ID", "acked ID"), flushed only after the call returned: a line in the
output is a promise the parent holds the spool to after `kill -9`.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from probelink.agent.spool import Spool

# Large enough that the crash tests never evict: there every report must survive.
MAX_BYTES = 1 << 30
MAX_REPORTS = 1_000_000


def payload(report_id: str) -> bytes:
    """The bytes spooled for an id: its own digest repeated, 32 B to 4 KiB, so a torn or
    swapped blob shows."""
    digest = hashlib.sha256(report_id.encode()).digest()
    return digest * (1 + digest[0] % 128)


def main(argv: list[str]) -> None:
    mode, path = argv[0], Path(argv[1])
    spool = Spool(path, max_bytes=MAX_BYTES, max_reports=MAX_REPORTS)
    print("ready", flush=True)
    if mode == "put":
        prefix = argv[2]
        i = 0
        while True:
            report_id = f"{prefix}-{i:06d}"
            spool.put(report_id, payload(report_id))
            print(f"put-returned {report_id}", flush=True)
            i += 1
    elif mode == "ack":
        while batch := spool.pending(16):
            for report_id, _ in batch:
                if spool.ack(report_id):
                    print(f"acked {report_id}", flush=True)
        print("done", flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}; use put or ack")


if __name__ == "__main__":
    main(sys.argv[1:])
