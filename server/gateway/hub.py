"""The open Connect streams of this server, so messages can be pushed down them.

    hub.broadcast(gateway_pb2.ConnectResponse(dictionary=…))   # a new dictionary, to all
    hub.send(device_id, gateway_pb2.ConnectResponse(advisory=…)) # to one device's streams
    hub.end_device(device_id, Unauthenticated(…))              # after a revocation
    await hub.end_all()                                         # shutdown: finish, then end

Each stream owns an outbox queue; the hub only puts into it. `None` in an outbox tells
the stream to finish its in-flight reports and end; an error ends it with that status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from probelink.server.errors import ServerError
from probelink.v1 import gateway_pb2

# A message to send; an error to end the stream with; None to finish and end with OK.
Outbox = asyncio.Queue[gateway_pb2.ConnectResponse | ServerError | None]


class Hub:
    def __init__(self) -> None:
        self._streams: dict[str, set[Outbox]] = defaultdict(set)
        self._ended = asyncio.Event()

    def join(self, device_id: str, outbox: Outbox) -> None:
        self._streams[device_id].add(outbox)

    def leave(self, device_id: str, outbox: Outbox) -> None:
        boxes = self._streams.get(device_id)
        if boxes is not None:
            boxes.discard(outbox)
            if not boxes:
                del self._streams[device_id]
        if not self._streams:
            self._ended.set()

    def broadcast(self, message: gateway_pb2.ConnectResponse) -> None:
        for boxes in self._streams.values():
            for box in boxes:
                box.put_nowait(message)

    def send(self, device_id: str, message: gateway_pb2.ConnectResponse) -> bool:
        """Put `message` on the device's open streams; False when it has none here."""
        boxes = self._streams.get(device_id)
        for box in boxes or ():
            box.put_nowait(message)
        return bool(boxes)

    def end_device(self, device_id: str, error: ServerError) -> None:
        """End the device's streams at once with `error` (its credential was revoked)."""
        for box in self._streams.get(device_id, ()):
            box.put_nowait(error)

    async def end_all(self, timeout_s: float) -> None:
        """Ask every stream to finish its in-flight reports and end; wait for that."""
        if not self._streams:
            return
        self._ended.clear()
        for boxes in self._streams.values():
            for box in boxes:
                box.put_nowait(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), timeout_s)
