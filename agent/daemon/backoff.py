"""When to try again: capped exponential backoff with jitter.

    backoff = Backoff(initial_s=1, max_s=300)
    await asyncio.sleep(backoff.next())   # ~1 s, ~2 s, ~4 s … up to 300 s, each ±20 %
    backoff.reset()                       # after the link proved healthy

The jitter matters more than the curve: after a server restart every agent of a
service network reconnects at once, and without it they would all come back in
lock-step, every retry a thundering herd. ±20 % (gRPC's own connection-backoff
figure) spreads them while keeping each agent's waits predictable enough to reason
about in a status line.
"""

from __future__ import annotations

import random

MULTIPLIER = 2.0
JITTER = 0.2


class Backoff:
    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError(f"backoff needs 0 < initial ({initial_s}) <= max ({max_s})")
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The wait before the next attempt, and count this failure."""
        base = min(self.max_s, self.initial_s * MULTIPLIER ** min(self.failures, 64))
        # Counting on past the cap would only overflow the power (after ~1,000 failures).
        if base < self.max_s:
            self.failures += 1
        return min(self.max_s, base * self._rng.uniform(1 - JITTER, 1 + JITTER))

    def reset(self) -> None:
        self.failures = 0


def jittered(seconds: float, fraction: float, rng: random.Random | None = None) -> float:
    """`seconds` stretched or shrunk by up to ±fraction: a scheduled wait."""
    return seconds * (rng or random).uniform(1 - fraction, 1 + fraction)
