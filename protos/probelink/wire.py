"""The report codec both sides share: a serialized Report becomes one checked zstd frame.

    encoder = Encoder(key=device_key)                     # or Encoder(dictionary, 5, key=…)
    frame = encoder.encode(report.SerializeToString())    # a signed wire_pb2.ReportFrame

With a device key (`probelink.signing.DeviceKey`) every frame carries the device's
signature of the report; the server refuses unsigned frames.

Every frame declares its content size, carries a checksum and (when a dictionary is
used) writes the dictionary id in its header: the server checks all three from the
header before it decompresses anything (`probelink.server.ingest.frames`).

A dictionary is the bytes of a trained zstd dictionary (`Dictionary.content`). The
server trains it with `dict_id=<Dictionary.dictionary_id>`, so the id written inside
the dictionary, in every frame's header and in `ReportFrame.dictionary_id` are one
number; `compressor_for` refuses a dictionary whose inner id says otherwise.

An `Encoder` keeps its compressor (and the dictionary's precomputed tables) for the
next report: building them costs more than compressing a report. Like the zstd
compressor inside it, one Encoder is for one thread at a time.
"""

from __future__ import annotations

import zstandard

from probelink.signing import DeviceKey
from probelink.v1 import wire_pb2

#: Trailing metadata of a refused UploadReport: the RefusalReason, lower case without
#: its prefix (`not_zstd`, `unknown_dictionary`, …), so a client can act on it.
REFUSAL_REASON_KEY = "probelink-refusal-reason"

# Level 3 is zstd's default. Measured on our reports (no dictionary, mean of 200):
# level 3 -> 3,961 bytes in 29 µs; level 9 -> 3,911 in 140 µs; level 19 -> 3,858 in
# 1 ms. A few percent is not worth 5-35x the CPU on a phone or a bench fixture.
DEFAULT_LEVEL = 3


def compressor_for(
    dictionary: bytes | None, dictionary_id: int, level: int = DEFAULT_LEVEL
) -> zstandard.ZstdCompressor:
    """A compressor writing content size, checksum and dictionary id into each frame.

    Raises ValueError when `dictionary_id` is not the id inside `dictionary` (or is
    not 0 without one): frames would then name a dictionary they were not made with.
    """
    if dictionary is None:
        if dictionary_id != 0:
            raise ValueError(f"dictionary id {dictionary_id} given without its dictionary")
        return zstandard.ZstdCompressor(
            level=level, write_content_size=True, write_checksum=True, write_dict_id=True
        )
    zdict = zstandard.ZstdCompressionDict(dictionary)
    if zdict.dict_id() == 0:
        raise ValueError(
            "the dictionary has no id inside (raw bytes, not a trained zstd dictionary): "
            "use Dictionary.content as the server sent it"
        )
    if zdict.dict_id() != dictionary_id:
        raise ValueError(
            f"the dictionary's content says it is dictionary {zdict.dict_id()}, "
            f"not {dictionary_id}: use the content and id of the same Dictionary message"
        )
    # Precomputed tables: without them every compress() would load the dictionary anew.
    zdict.precompute_compress(level=level)
    return zstandard.ZstdCompressor(
        level=level,
        dict_data=zdict,
        write_content_size=True,
        write_checksum=True,
        write_dict_id=True,
    )


class Encoder:
    """Compresses serialized Reports into ReportFrames with one reusable compressor."""

    def __init__(
        self,
        dictionary: bytes | None = None,
        dictionary_id: int = 0,
        level: int = DEFAULT_LEVEL,
        key: DeviceKey | None = None,
    ) -> None:
        self.dictionary_id = dictionary_id
        self.key = key
        self._compressor = compressor_for(dictionary, dictionary_id, level)

    def encode(self, serialized: bytes) -> wire_pb2.ReportFrame:
        """One frame; signed when the encoder has a key."""
        return wire_pb2.ReportFrame(
            dictionary_id=self.dictionary_id,
            zstd_frame=self._compressor.compress(serialized),
            signature=self.key.sign(serialized) if self.key is not None else b"",
        )


def encode_report(
    serialized: bytes,
    dictionary: bytes | None = None,
    dictionary_id: int = 0,
    level: int = DEFAULT_LEVEL,
    key: DeviceKey | None = None,
) -> wire_pb2.ReportFrame:
    """One report, one frame; for many reports keep an `Encoder` instead."""
    return Encoder(dictionary, dictionary_id, level, key).encode(serialized)
