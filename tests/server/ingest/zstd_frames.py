"""Build and take apart zstd frames by hand (RFC 8878 §3.1.1), independently of the server.

    head, body = split(real_frame)                       # body: blocks + checksum
    forged = header(content_size=4 << 30) + body         # same blocks, a forged size
    bomb = header(1 << 30) + rle_blocks(1 << 30) + bytes(4)

The header is split with python-zstandard's own `frame_header_size`, so these helpers
do not share code (or mistakes) with `probelink.server.ingest.frames`.
"""

from __future__ import annotations

import zstandard

MAGIC = bytes.fromhex("28b52ffd")
GARBAGE = b"not part of any frame \x00\xff" * 3


def split(frame: bytes) -> tuple[bytes, bytes]:
    """(frame header with magic, blocks and checksum)."""
    n = zstandard.frame_header_size(frame)
    return frame[:n], frame[n:]


def header(
    content_size: int | None,
    *,
    fcs_bytes: int | None = None,
    single_segment: bool | None = None,
    window_descriptor: int | None = None,
    checksum: bool = True,
    dict_id: int = 0,
    dict_bytes: int | None = None,
    reserved_bit: bool = False,
) -> bytes:
    """A frame header (magic included) declaring what it is told to."""
    if single_segment is None:
        single_segment = content_size is not None and window_descriptor is None
    if content_size is None:
        fcs_bytes = 0
    elif fcs_bytes is None:
        if single_segment and content_size < 256:
            fcs_bytes = 1
        elif 256 <= content_size < 65536 + 256:
            fcs_bytes = 2
        else:
            fcs_bytes = 4 if content_size < 1 << 32 else 8
    fcs_flag = {0: 0, 1: 0, 2: 1, 4: 2, 8: 3}[fcs_bytes]
    if dict_bytes is None:
        dict_bytes = 0 if dict_id == 0 else 1 if dict_id < 256 else 2 if dict_id < 65536 else 4
    dict_flag = {0: 0, 1: 1, 2: 2, 4: 3}[dict_bytes]
    descriptor = (
        fcs_flag << 6
        | (0x20 if single_segment else 0)
        | (0x08 if reserved_bit else 0)
        | (0x04 if checksum else 0)
        | dict_flag
    )
    out = MAGIC + bytes([descriptor])
    if not single_segment:
        out += bytes(
            [0x58 if window_descriptor is None else window_descriptor]
        )  # 0x58: a 2 MiB window
    out += dict_id.to_bytes(dict_bytes, "little")
    if content_size is not None:
        value = content_size - 256 if fcs_bytes == 2 else content_size
        out += value.to_bytes(fcs_bytes, "little")
    return out


def block_header(size: int, block_type: int, last: bool) -> bytes:
    """0 raw, 1 RLE, 2 compressed, 3 reserved."""
    return (size << 3 | block_type << 1 | int(last)).to_bytes(3, "little")


def rle_blocks(total: int, byte: int = 0) -> bytes:
    """RLE blocks regenerating `total` bytes of `byte`: 4 bytes per 128 KiB."""
    out = bytearray()
    while total:
        n = min(total, 128 * 1024)
        total -= n
        out += block_header(n, 1, last=total == 0) + bytes([byte])
    return bytes(out)


def skippable(payload: bytes, magic_low: int = 0) -> bytes:
    return (
        (0x184D2A50 | magic_low).to_bytes(4, "little")
        + len(payload).to_bytes(4, "little")
        + payload
    )
