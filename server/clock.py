"""The server's one clock and its one time format: microseconds since the epoch, UTC.

stored_at = now_us()            # what the store keeps in every *_us column
ack.stored_at.CopyFrom(timestamp(stored_at))
"""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp


def now_us() -> int:
    """Now, in the store's unit."""
    return time.time_ns() // 1000


def timestamp(us: int) -> Timestamp:
    """A protobuf Timestamp for `us` (built directly: it runs once per ack)."""
    return Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000)
