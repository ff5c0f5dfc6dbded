"""Read a zstd frame's header and block headers by hand, before anything is decompressed.

    info = inspect_frame(frame_bytes, max_content_size=1 << 20)
    info.content_size, info.dictionary_id_in_header   # trusted only after decompressing

"Validate before you allocate": a few KiB can declare (or expand to) GiBs, so the
server learns everything it needs from the headers (RFC 8878 §3.1.1) and refuses a
frame that is not exactly one zstd frame, declares no content size or more than
the limit, carries no checksum, or ends early or late — with an `IngestRefused`
whose message says what is wrong and what the sender should do.

Why not let python-zstandard check? Its one-shot `decompress(max_output_size=...)`
ignores the limit when the header declares a size (it allocates the declared size),
and a frame declaring size 0 followed by garbage decompresses to b"" without error.
tests/server/ingest/test_frames.py demonstrates both.
"""

from __future__ import annotations

from dataclasses import dataclass

from probelink.server.errors import IngestRefused
from probelink.v1 import wire_pb2

# The default for the largest report the server takes (decompressed).
DEFAULT_MAX_CONTENT_SIZE = 1 << 20
MAGIC = 0xFD2FB528
# Skippable frames use the 16 magic numbers 0x184D2A50..0x184D2A5F.
_SKIPPABLE_MASK = 0xFFFFFFF0
_SKIPPABLE_MAGIC = 0x184D2A50
# A block never regenerates more than this (Block_Maximum_Size's upper bound).
BLOCK_SIZE_MAX = 128 * 1024
# RFC 8878 recommends decoders support windows up to 8 MiB; nothing we accept needs
# more (a report is at most max_content_size), and a window is memory a decoder may
# have to allocate.
MAX_WINDOW_SIZE = 8 * 1024 * 1024
_CHECKSUM_SIZE = 4
_BLOCK_HEADER_SIZE = 3
_RAW, _RLE, _COMPRESSED = 0, 1, 2
_DICT_ID_SIZES = (0, 1, 2, 4)
_FCS_SIZES = (0, 2, 4, 8)  # index 0 means 1 byte in a single-segment frame

_SEND_ONE_FRAME = (
    "send the serialized Report compressed as one zstd frame with its content size "
    "and a checksum (probelink.wire.encode_report)"
)


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What a frame's headers say, checked for consistency but not yet decompressed."""

    content_size: int
    has_checksum: bool
    # 0 when the header names no dictionary.
    dictionary_id_in_header: int
    window_size: int
    # Bytes from the magic number to the end of the checksum.
    frame_length: int


def max_frame_length(max_content_size: int) -> int:
    """The most bytes a frame of an acceptable report can need.

    zstd's own bound (ZSTD_COMPRESSBOUND: incompressible data costs 3 bytes per
    128 KiB block) plus room for the header (at most 18 bytes) and the checksum.
    """
    return max_content_size + (max_content_size >> 8) + 1024


def _size_text(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def _refuse(reason: wire_pb2.RefusalReason.ValueType, message: str) -> IngestRefused:
    return IngestRefused(reason, message)


def _truncated(where: str, need: int, have: int) -> IngestRefused:
    return _refuse(
        wire_pb2.REFUSAL_REASON_TRUNCATED,
        f"the frame ends inside its {where} (needs byte {need}, has {have} bytes): "
        "it was cut short; resend the whole frame",
    )


def inspect_frame(data: bytes, max_content_size: int) -> FrameInfo:
    """Check that `data` is exactly one acceptable zstd frame; say what its header declares.

    Raises IngestRefused (NOT_ZSTD, NO_CONTENT_SIZE, NO_CHECKSUM, TOO_LARGE, TRUNCATED,
    TRAILING_DATA or CORRUPT). Costs a few microseconds: headers only, no decoding.
    """
    size = len(data)
    if size == 0:
        raise _refuse(wire_pb2.REFUSAL_REASON_NOT_ZSTD, f"the frame is empty: {_SEND_ONE_FRAME}")
    if size < 4:
        if data == MAGIC.to_bytes(4, "little")[:size]:
            raise _truncated("magic number", 4, size)
        raise _refuse(
            wire_pb2.REFUSAL_REASON_NOT_ZSTD,
            f"the frame is {size} bytes, too short for a zstd frame: {_SEND_ONE_FRAME}",
        )
    magic = int.from_bytes(data[:4], "little")
    if magic & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_NOT_ZSTD,
            f"the data starts with a zstd skippable frame (magic 0x{magic:08X}), which "
            f"carries no report: {_SEND_ONE_FRAME}",
        )
    if magic != MAGIC:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_NOT_ZSTD,
            f"the data does not start with the zstd magic number 0x{MAGIC:08X} "
            f"(got bytes {data[:4].hex()}): {_SEND_ONE_FRAME}",
        )
    limit = max_frame_length(max_content_size)
    if size > limit:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_TOO_LARGE,
            f"the frame is {size} bytes; a report of at most {_size_text(max_content_size)} "
            f"never needs more than {limit}: send smaller reports",
        )
    if size < 5:
        raise _truncated("frame header", 5, size)

    descriptor = data[4]
    fcs_flag = descriptor >> 6
    single_segment = bool(descriptor & 0x20)
    # Bit 4 is "unused": the RFC tells decoders to ignore it. Bit 3 is reserved.
    if descriptor & 0x08:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_NOT_ZSTD,
            "the zstd frame header sets its reserved bit (Frame_Header_Descriptor bit 3), "
            f"so it is not a frame this format version defines: {_SEND_ONE_FRAME}",
        )
    has_checksum = bool(descriptor & 0x04)
    dict_id_size = _DICT_ID_SIZES[descriptor & 0x03]
    fcs_size = _FCS_SIZES[fcs_flag] or (1 if single_segment else 0)
    pos = 5
    header_end = pos + (0 if single_segment else 1) + dict_id_size + fcs_size
    if size < header_end:
        raise _truncated("frame header", header_end, size)

    window_size = 0
    if not single_segment:
        window_descriptor = data[pos]
        pos += 1
        window_base = 1 << (10 + (window_descriptor >> 3))
        window_size = window_base + (window_base >> 3) * (window_descriptor & 0x07)
    dictionary_id = int.from_bytes(data[pos : pos + dict_id_size], "little")
    pos += dict_id_size
    if fcs_size == 0:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_NO_CONTENT_SIZE,
            "the frame header does not declare the content size, so the server cannot "
            "check the size before decompressing; compress the whole report in one call "
            "with the content size written (zstd's one-shot compress does; a streaming "
            "compressor needs the size given up front)",
        )
    content_size = int.from_bytes(data[pos : pos + fcs_size], "little")
    if fcs_size == 2:
        content_size += 256  # RFC 8878 §3.1.1.1.4: the 2-byte field is offset by 256
    pos += fcs_size
    if single_segment:
        window_size = content_size
    if not has_checksum:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_NO_CHECKSUM,
            "the frame carries no content checksum, so corruption could go unnoticed; "
            "compress with the checksum on (zstd --check, write_checksum=True)",
        )
    if content_size > max_content_size:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_TOO_LARGE,
            f"the frame declares {_size_text(content_size)} of content; this server accepts "
            f"at most {_size_text(max_content_size)} per report: send smaller reports",
        )
    if window_size > MAX_WINDOW_SIZE:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_TOO_LARGE,
            f"the frame asks for a {_size_text(window_size)} decoding window; this server "
            f"decodes at most {_size_text(MAX_WINDOW_SIZE)}: compress with a smaller window "
            "(zstd's defaults for a report-sized input do)",
        )

    frame_length = _walk_blocks(data, pos, min(window_size, BLOCK_SIZE_MAX), content_size)
    frame_length += _CHECKSUM_SIZE
    if size < frame_length:
        raise _truncated("checksum", frame_length, size)
    if size > frame_length:
        raise _refuse(
            wire_pb2.REFUSAL_REASON_TRAILING_DATA,
            f"{size - frame_length} bytes follow the end of the zstd frame "
            f"({frame_length} bytes): send exactly one frame per report, nothing after it",
        )
    return FrameInfo(content_size, has_checksum, dictionary_id, window_size, frame_length)


def max_blocks(content_size: int) -> int:
    """The most blocks we walk for a frame of `content_size` bytes.

    zstd's one-shot compressor writes one block per 128 KiB (a report: one or two);
    a sender would need to flush every few hundred bytes to come near this. Without a
    bound, a 1 MiB frame of empty 3-byte blocks costs ~85 ms of Python to walk.
    """
    return 16 + content_size // 1024


def _walk_blocks(data: bytes, pos: int, block_max: int, content_size: int) -> int:
    """The offset just after the last block; refuses bad, oversized or missing blocks."""
    size = len(data)
    # Raw and RLE blocks say how much they regenerate; compressed ones are checked
    # when decompressing. This catches the cheap cases of "more than declared" early.
    regenerated = 0
    blocks_left = max_blocks(content_size)
    while True:
        if not blocks_left:
            raise _refuse(
                wire_pb2.REFUSAL_REASON_TOO_LARGE,
                f"the frame is split into more than {max_blocks(content_size)} blocks for "
                f"{content_size} bytes of content; compress the whole report in one call",
            )
        blocks_left -= 1
        if size < pos + _BLOCK_HEADER_SIZE:
            raise _truncated("block header", pos + _BLOCK_HEADER_SIZE, size)
        header = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
        pos += _BLOCK_HEADER_SIZE
        last = header & 1
        block_type = (header >> 1) & 0x03
        block_size = header >> 3
        if block_type > _COMPRESSED:
            raise _refuse(
                wire_pb2.REFUSAL_REASON_CORRUPT,
                f"block at byte {pos - _BLOCK_HEADER_SIZE} has the reserved block type 3: "
                "the frame is damaged; resend it",
            )
        if block_size > block_max:
            raise _refuse(
                wire_pb2.REFUSAL_REASON_CORRUPT,
                f"block at byte {pos - _BLOCK_HEADER_SIZE} is {block_size} bytes, more than "
                f"the frame's maximum block size {block_max}: the frame is damaged; resend it",
            )
        if block_type == _COMPRESSED:
            pos += block_size
        else:
            regenerated += block_size
            pos += block_size if block_type == _RAW else 1
            if regenerated > content_size:
                raise _refuse(
                    wire_pb2.REFUSAL_REASON_CORRUPT,
                    f"the blocks hold more than the {content_size} bytes the header "
                    "declares: the frame is damaged; resend it",
                )
        if size < pos:
            raise _truncated("block content", pos, size)
        if last:
            return pos
