"""A child process for the SelfMonitor tests: it grows, frees or burns on command.

    python tests/agent/grower_child.py      # then, one command a line on stdin:
    grow 64      hold 64 MiB more (written, so the pages are resident)  -> "ok"
    free         let go of everything held                              -> "ok"
    burn 2.0     spin on the CPU for 2 seconds                          -> "ok" when done

It prints "ready" first, and "ok" after each command, flushed: the parent waits for
the line rather than for a guessed time.
"""

from __future__ import annotations

import sys
import time

MIB = 1 << 20


def main() -> None:
    held: list[bytes] = []
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "grow":
            held.extend(b"\x01" * MIB for _ in range(int(argument)))
        elif command == "free":
            held.clear()
        elif command == "burn":
            until = time.monotonic() + float(argument)
            while time.monotonic() < until:
                pass
        else:
            raise SystemExit(f"unknown command {command!r}; use grow N, free or burn S")
        print("ok", flush=True)


if __name__ == "__main__":
    main()
