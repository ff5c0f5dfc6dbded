"""A child process that holds the advisory store open and writes to it, as the daemon does.

    python tests/agent/advisory_child.py STATE_DIR

It keeps advisory `adv-000000`, `adv-000001`, … one commit each, and resends
`adv-000000` with every one (as a server resends what it has not seen confirmed), so a
person's acknowledgement of it must survive every resend. It prints "kept ID" after
each `keep` returned, and stops at a line on stdin: then prints "stopped N" (how many it
kept) and closes the store.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from probelink.agent.advisories import AdvisoryStore
from probelink.v1 import advisory_pb2


def advisory(n: int) -> advisory_pb2.Advisory:
    a = advisory_pb2.Advisory(
        advisory_id=f"adv-{n:06d}",
        device_id="dev-child",
        kind="trend",
        code="battery.health_pct:BAT0",
        severity="advisory",
        text={"en": f"Advisory number {n}.", "zh-CN": f"第 {n} 条提醒。"},
    )
    a.raised_at.FromSeconds(1_800_000_000 + n)
    return a


def main(argv: list[str]) -> None:
    # Never evicts: every advisory kept must still be there at the end.
    store = AdvisoryStore.open(Path(argv[0]), max_kept=1_000_000)
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    n = 0
    while not stop.is_set():
        store.keep([advisory(n), advisory(0)])
        print(f"kept adv-{n:06d}", flush=True)
        n += 1
        # A daemon gets a few advisories a month; this only has to overlap the CLI.
        time.sleep(0.005)
    store.close()
    print(f"stopped {n}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
