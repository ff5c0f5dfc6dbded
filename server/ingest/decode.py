"""One ReportFrame in, one parsed Report out — or an IngestRefused saying why not.

    decoded = decode_frame(frame, book, max_content_size=1 << 20)
    decoded.report, decoded.serialized, decoded.sha256

The order is the point: the frame's headers are checked by hand first
(`frames.inspect_frame`: size declared and within the limit, checksum present,
exactly one frame), then the dictionary is chosen, and only then is anything
decompressed — into exactly the declared, already bounded, size. zstd's checksum
then guarantees the content is what the sender compressed.

A frame naming a dictionary this process does not hold is refused as
UNKNOWN_DICTIONARY; with several replicas, the caller first asks the store
(`DictionaryBook.learn`) in case another replica issued it.

Content that parses but has top-level fields Report does not define is refused as
MALFORMED_REPORT: that is what random or foreign bytes look like once parsed (proto3
keeps what it does not know as unknown fields instead of failing). Unknown fields
*inside* results are kept: that is how a newer agent's new probe data arrives, and
the stored bytes keep it for a newer server to read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import zstandard
from google.protobuf import message, unknown_fields

from probelink.server.errors import IngestRefused
from probelink.server.ingest.dictionaries import DictionaryBook
from probelink.server.ingest.frames import DEFAULT_MAX_CONTENT_SIZE, FrameInfo, inspect_frame
from probelink.v1 import report_pb2, wire_pb2


@dataclass(frozen=True, slots=True)
class DecodedReport:
    report: report_pb2.Report
    # The decompressed content: exactly what the agent serialized.
    serialized: bytes
    # SHA-256 of `serialized`: the idempotency check compares it.
    sha256: bytes
    info: FrameInfo


def _known_text(book: DictionaryBook) -> str:
    ids = book.ids
    if not ids:
        return "this server has issued no dictionary yet (use dictionary 0: none)"
    return f"this server's current dictionary is {ids[-1]}"


def decode_frame(
    frame: wire_pb2.ReportFrame,
    book: DictionaryBook,
    max_content_size: int = DEFAULT_MAX_CONTENT_SIZE,
) -> DecodedReport:
    """Check, decompress and parse one frame. Raises IngestRefused, never anything else
    for bad input. Does not judge the report's fields: that is `validate.summarize`."""
    data = frame.zstd_frame
    info = inspect_frame(data, max_content_size)
    named = frame.dictionary_id
    in_header = info.dictionary_id_in_header
    if in_header and in_header != named:
        raise IngestRefused(
            wire_pb2.REFUSAL_REASON_CORRUPT,
            f"the frame's zstd header says it was compressed with dictionary {in_header}, "
            f"but ReportFrame.dictionary_id says {named}: set dictionary_id to the dictionary "
            "the frame was compressed with",
        )
    if named not in book:
        raise IngestRefused(
            wire_pb2.REFUSAL_REASON_UNKNOWN_DICTIONARY,
            f"the frame was compressed with dictionary {named}, which this server never "
            f"issued; {_known_text(book)}: fetch it with GetDictionary (or reconnect: "
            "Connect sends it) and re-encode the report",
        )
    if info.content_size == 0:
        # Also the case zstd would "decompress" without looking at the blocks.
        raise IngestRefused(
            wire_pb2.REFUSAL_REASON_MALFORMED_REPORT,
            "the frame holds 0 bytes: an empty Report has no id; compress the serialized Report",
        )
    try:
        serialized = book.decompressor(named).decompress(data)
    except zstandard.ZstdError as err:
        raise IngestRefused(
            wire_pb2.REFUSAL_REASON_CORRUPT,
            f"the frame did not decompress ({err}): it is damaged, or was compressed with "
            f"another dictionary than {named}; resend it",
        ) from err
    if len(serialized) != info.content_size:
        raise IngestRefused(
            wire_pb2.REFUSAL_REASON_CORRUPT,
            f"the frame decompressed to {len(serialized)} bytes but declares "
            f"{info.content_size}: it is damaged; resend it",
        )
    try:
        report = report_pb2.Report.FromString(serialized)
    except message.DecodeError as err:
        raise IngestRefused(
            wire_pb2.REFUSAL_REASON_MALFORMED_REPORT,
            f"the content is not a serialized probelink.v1.Report ({err}): "
            "compress report.SerializeToString()",
        ) from err
    unknown = unknown_fields.UnknownFieldSet(report)
    if len(unknown):
        numbers = sorted({unknown[i].field_number for i in range(len(unknown))})
        shown = ", ".join(map(str, numbers[:8])) + (", ..." if len(numbers) > 8 else "")
        raise IngestRefused(
            wire_pb2.REFUSAL_REASON_MALFORMED_REPORT,
            f"the content parses with fields a Report does not have (field numbers {shown}, "
            "or known numbers with the wrong wire type): it is not a serialized "
            "probelink.v1.Report — or the agent is newer than this server: upgrade the server",
        )
    return DecodedReport(report, serialized, hashlib.sha256(serialized).digest(), info)
