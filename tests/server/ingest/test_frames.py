"""inspect_frame: what a zstd frame's headers declare, and every way a frame is refused
before anything is decompressed."""

from __future__ import annotations

import pytest
import zstandard

from probelink.server.errors import IngestRefused
from probelink.server.ingest.frames import (
    MAX_WINDOW_SIZE,
    FrameInfo,
    inspect_frame,
    max_blocks,
    max_frame_length,
)
from probelink.v1 import wire_pb2
from probelink.wire import encode_report
from tests.server.ingest.reports import captured_report
from tests.server.ingest.zstd_frames import (
    GARBAGE,
    block_header,
    header,
    rle_blocks,
    skippable,
    split,
)

MiB = 1 << 20
GiB = 1 << 30
CHECKED = zstandard.ZstdCompressor(write_content_size=True, write_checksum=True)


def refusal(data: bytes, max_content_size: int = MiB) -> IngestRefused:
    with pytest.raises(IngestRefused) as caught:
        inspect_frame(data, max_content_size)
    return caught.value


def reason(data: bytes, max_content_size: int = MiB) -> str:
    return wire_pb2.RefusalReason.Name(refusal(data, max_content_size).reason)


@pytest.fixture(scope="module")
def report_bytes() -> bytes:
    return captured_report().SerializeToString()


@pytest.fixture(scope="module")
def frame(report_bytes: bytes) -> bytes:
    return encode_report(report_bytes).zstd_frame


# -- what real frames declare --------------------------------------------------------


def test_a_real_report_frame_is_read_whole(report_bytes: bytes, frame: bytes) -> None:
    # A report of a few KiB: single segment, the 2-byte size field (+256 rule).
    assert inspect_frame(frame, MiB) == FrameInfo(
        content_size=len(report_bytes),
        has_checksum=True,
        dictionary_id_in_header=0,
        window_size=len(report_bytes),
        frame_length=len(frame),
    )
    assert split(frame)[0][4] >> 6 == 1, "expected the 2-byte content size field"


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65535 + 256, 65536 + 256, 300_000, MiB])
def test_each_content_size_field_width_is_read_right(size: int) -> None:
    content = bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = CHECKED.compress(content)
    params = zstandard.get_frame_parameters(data)
    assert inspect_frame(data, MiB) == FrameInfo(
        content_size=size,
        has_checksum=True,
        dictionary_id_in_header=0,
        window_size=params.window_size,
        frame_length=len(data),
    )


def test_a_frame_with_a_window_descriptor_and_many_small_blocks_is_read_whole() -> None:
    params = zstandard.ZstdCompressionParameters.from_level(
        3, window_log=10, write_checksum=1, write_content_size=1
    )
    content = bytes(range(256)) * 20
    data = zstandard.ZstdCompressor(compression_params=params).compress(content)
    assert not data[4] & 0x20, "expected a frame with a window descriptor"
    assert inspect_frame(data, MiB) == FrameInfo(5120, True, 0, 1024, len(data))


def test_the_unused_header_bit_is_ignored_as_the_rfc_says(frame: bytes) -> None:
    flipped = frame[:4] + bytes([frame[4] | 0x10]) + frame[5:]
    assert inspect_frame(flipped, MiB) == inspect_frame(frame, MiB)


def test_a_dictionary_id_in_the_header_is_read_at_each_width(frame: bytes) -> None:
    _, body = split(frame)
    size = inspect_frame(frame, MiB).content_size
    for dict_id, width in [(7, 1), (300, 2), (70_000, 4), (7, 4)]:
        data = header(size, dict_id=dict_id, dict_bytes=width) + body
        assert inspect_frame(data, MiB).dictionary_id_in_header == dict_id


# -- why by hand: what python-zstandard does with these frames -------------------------


def test_zstandard_ignores_max_output_size_when_the_header_declares_a_size() -> None:
    bomb = CHECKED.compress(bytes(10 * MiB))
    assert len(bomb) < 4096
    # The library allocates and fills what the header declares, limit or not.
    assert len(zstandard.decompress(bomb, max_output_size=MiB)) == 10 * MiB
    assert len(zstandard.ZstdDecompressor().decompress(bomb, max_output_size=MiB)) == 10 * MiB
    # Our path refuses it from the header alone.
    refused = refusal(bomb)
    assert (refused.reason, str(refused)) == (
        wire_pb2.REFUSAL_REASON_TOO_LARGE,
        "the frame declares 10 MiB of content; this server accepts at most 1 MiB per report: "
        "send smaller reports",
    )


def test_zstandard_turns_size_zero_followed_by_garbage_into_empty_bytes() -> None:
    empty = CHECKED.compress(b"")
    assert zstandard.decompress(empty + GARBAGE) == b""
    assert zstandard.ZstdDecompressor().decompress(empty + GARBAGE) == b""
    refused = refusal(empty + GARBAGE)
    assert (refused.reason, str(refused)) == (
        wire_pb2.REFUSAL_REASON_TRAILING_DATA,
        f"{len(GARBAGE)} bytes follow the end of the zstd frame ({len(empty)} bytes): "
        "send exactly one frame per report, nothing after it",
    )
    # Size 0 with garbage where the blocks should be is not read past either.
    assert reason(empty[:-7] + GARBAGE) != "REFUSAL_REASON_UNSPECIFIED"


# -- not a zstd frame -------------------------------------------------------------------


def test_empty_input_is_not_zstd() -> None:
    refused = refusal(b"")
    assert refused.reason == wire_pb2.REFUSAL_REASON_NOT_ZSTD
    assert str(refused).startswith("the frame is empty: send the serialized Report compressed")


@pytest.mark.parametrize(
    "data",
    [
        b"\x1f\x8b\x08\x00" + bytes(20),  # gzip
        b'{"report_id": "x"}',
        b"\x0a\x24" + b"0" * 36,  # a serialized Report, not compressed
        b"xy",
    ],
)
def test_bytes_that_do_not_start_with_the_zstd_magic_are_not_zstd(data: bytes) -> None:
    refused = refusal(data)
    assert refused.reason == wire_pb2.REFUSAL_REASON_NOT_ZSTD
    assert "probelink.wire.encode_report" in str(refused)


@pytest.mark.parametrize("magic_low", [0, 7, 15])
def test_a_skippable_frame_is_not_a_report(frame: bytes, magic_low: int) -> None:
    refused = refusal(skippable(b"hello", magic_low) + frame)
    assert refused.reason == wire_pb2.REFUSAL_REASON_NOT_ZSTD
    assert "skippable frame (magic 0x184D2A5" in str(refused)


def test_the_reserved_header_bit_is_not_zstd(frame: bytes) -> None:
    flipped = frame[:4] + bytes([frame[4] | 0x08]) + frame[5:]
    refused = refusal(flipped)
    assert refused.reason == wire_pb2.REFUSAL_REASON_NOT_ZSTD
    assert "reserved bit" in str(refused)


# -- what the header must declare --------------------------------------------------------


def test_a_streamed_bomb_without_a_declared_size_is_refused_before_decompressing() -> None:
    streamed = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    bomb = b"".join(streamed.compress(bytes(MiB)) for _ in range(64)) + streamed.flush()
    assert len(bomb) < 8192  # 64 MiB of content
    assert zstandard.get_frame_parameters(bomb).content_size == zstandard.CONTENTSIZE_UNKNOWN
    refused = refusal(bomb)
    assert refused.reason == wire_pb2.REFUSAL_REASON_NO_CONTENT_SIZE
    assert "does not declare the content size" in str(refused)


def test_a_hand_made_gib_bomb_is_refused_with_or_without_a_declared_size() -> None:
    blocks = rle_blocks(GiB)  # 32 KiB of RLE blocks, 1 GiB of zeros
    assert len(blocks) == 32 * 1024
    declared = header(GiB) + blocks + bytes(4)
    assert (reason(declared), str(refusal(declared))) == (
        "REFUSAL_REASON_TOO_LARGE",
        "the frame declares 1 GiB of content; this server accepts at most 1 MiB per report: "
        "send smaller reports",
    )
    assert reason(header(None) + blocks + bytes(4)) == "REFUSAL_REASON_NO_CONTENT_SIZE"


@pytest.mark.parametrize(
    ("forged", "fcs_bytes"), [(2 * MiB, 4), (4 * GiB - 1, 4), (2 * MiB, 8), (2**64 - 1, 8)]
)
def test_a_forged_huge_declared_size_is_too_large(
    frame: bytes, forged: int, fcs_bytes: int
) -> None:
    _, body = split(frame)
    refused = refusal(header(forged, fcs_bytes=fcs_bytes) + body)
    assert refused.reason == wire_pb2.REFUSAL_REASON_TOO_LARGE
    assert "this server accepts at most 1 MiB per report" in str(refused)


def test_the_limit_is_the_callers(report_bytes: bytes, frame: bytes) -> None:
    assert inspect_frame(frame, len(report_bytes)).content_size == len(report_bytes)
    refused = refusal(frame, len(report_bytes) - 1)
    assert refused.reason == wire_pb2.REFUSAL_REASON_TOO_LARGE
    assert f"declares {len(report_bytes)} bytes of content" in str(refused)


def test_a_frame_longer_than_any_acceptable_report_needs_is_too_large() -> None:
    data = header(1000) + GARBAGE * (max_frame_length(MiB) // len(GARBAGE) + 1)
    refused = refusal(data)
    assert refused.reason == wire_pb2.REFUSAL_REASON_TOO_LARGE
    assert str(refused).startswith(f"the frame is {len(data)} bytes; a report of at most 1 MiB")


def test_a_window_over_the_limit_is_too_large(frame: bytes) -> None:
    _, body = split(frame)
    size = inspect_frame(frame, MiB).content_size
    # 0x70: exponent 14 -> a 16 MiB window, though the content is a few KiB.
    refused = refusal(header(size, window_descriptor=0x70) + body)
    assert refused.reason == wire_pb2.REFUSAL_REASON_TOO_LARGE
    assert "16 MiB decoding window" in str(refused)
    assert 8 * MiB == MAX_WINDOW_SIZE


def test_a_frame_without_checksum_is_refused(report_bytes: bytes) -> None:
    data = zstandard.ZstdCompressor(write_content_size=True, write_checksum=False).compress(
        report_bytes
    )
    refused = refusal(data)
    assert refused.reason == wire_pb2.REFUSAL_REASON_NO_CHECKSUM
    assert "write_checksum=True" in str(refused)


# -- the blocks --------------------------------------------------------------------------


def test_truncated_at_every_byte_is_refused(frame: bytes) -> None:
    for n in range(len(frame)):
        refused = refusal(frame[:n])
        want = "REFUSAL_REASON_NOT_ZSTD" if n == 0 else "REFUSAL_REASON_TRUNCATED"
        assert wire_pb2.RefusalReason.Name(refused.reason) == want, n
        if n:
            assert "resend the whole frame" in str(refused)


def test_two_frames_back_to_back_are_trailing_data(frame: bytes) -> None:
    refused = refusal(frame + frame)
    assert refused.reason == wire_pb2.REFUSAL_REASON_TRAILING_DATA
    assert str(refused).startswith(f"{len(frame)} bytes follow the end of the zstd frame")


def test_the_reserved_block_type_is_corrupt(frame: bytes) -> None:
    head, body = split(frame)
    first = int.from_bytes(body[:3], "little") | 0b110
    refused = refusal(head + first.to_bytes(3, "little") + body[3:])
    assert refused.reason == wire_pb2.REFUSAL_REASON_CORRUPT
    assert "reserved block type" in str(refused)


def test_a_block_larger_than_the_window_is_corrupt() -> None:
    # A 1 KiB window allows no block over 1 KiB.
    content = bytes(range(256)) * 8
    data = header(len(content), window_descriptor=0x00) + block_header(2048, 0, True)
    refused = refusal(data + content + bytes(4))
    assert refused.reason == wire_pb2.REFUSAL_REASON_CORRUPT
    assert "more than the frame's maximum block size 1024" in str(refused)


def test_a_block_over_128_kib_is_corrupt() -> None:
    data = header(200_000, window_descriptor=0x58) + block_header(131_073, 1, True) + b"\0"
    refused = refusal(data + bytes(4))
    assert refused.reason == wire_pb2.REFUSAL_REASON_CORRUPT
    assert "maximum block size 131072" in str(refused)


def test_raw_blocks_holding_more_than_declared_are_corrupt() -> None:
    data = header(10) + block_header(10, 0, False) + bytes(10) + block_header(1, 1, True) + b"x"
    refused = refusal(data + bytes(4))
    assert refused.reason == wire_pb2.REFUSAL_REASON_CORRUPT
    assert "more than the 10 bytes the header declares" in str(refused)


def test_a_missing_checksum_after_the_last_block_is_truncated() -> None:
    data = header(3) + block_header(3, 0, True) + b"abc" + b"\0\0"
    refused = refusal(data)
    assert refused.reason == wire_pb2.REFUSAL_REASON_TRUNCATED
    assert "checksum" in str(refused)


def test_a_frame_of_endless_empty_blocks_is_refused_without_walking_them_all() -> None:
    # Legal zstd, but 3 bytes per block that regenerates nothing: a cheap way to make
    # the server spend time. One-shot compressors write one block per 128 KiB.
    n = max_frame_length(MiB) // 3 - 16
    data = header(1000) + block_header(0, 0, False) * n + block_header(0, 0, True) + bytes(4)
    refused = refusal(data)
    assert (refused.reason, str(refused)) == (
        wire_pb2.REFUSAL_REASON_TOO_LARGE,
        f"the frame is split into more than {max_blocks(1000)} blocks for 1000 bytes of "
        "content; compress the whole report in one call",
    )
    assert max_blocks(1000) == 16


def test_the_most_blocks_allowed_are_walked() -> None:
    limit = max_blocks(300_000)
    rle = rle_blocks(300_000)  # 3 blocks: 128 KiB, 128 KiB, the rest
    data = header(300_000) + block_header(0, 0, False) * (limit - 3) + rle + bytes(4)
    assert inspect_frame(data, MiB).frame_length == len(data)
    # One more block is one too many.
    refused = refusal(header(300_000) + block_header(0, 0, False) + data[len(header(300_000)) :])
    assert refused.reason == wire_pb2.REFUSAL_REASON_TOO_LARGE
