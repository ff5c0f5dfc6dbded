"""probelink.wire: every frame declares its size, carries a checksum and names its dictionary."""

from __future__ import annotations

import pytest
import zstandard

from probelink.server.ingest.dictionaries import train
from probelink.v1 import wire_pb2
from probelink.wire import Encoder, compressor_for, encode_report
from tests.server.ingest.reports import captured_report, varied_reports


@pytest.fixture(scope="module")
def dictionary() -> bytes:
    return train([r.SerializeToString() for r in varied_reports(120, seed=11)], 7)


def test_a_frame_without_dictionary_declares_size_and_checksum_and_no_dictionary() -> None:
    serialized = captured_report().SerializeToString()
    frame = encode_report(serialized)
    params = zstandard.get_frame_parameters(frame.zstd_frame)
    assert (frame.dictionary_id, params.content_size, params.has_checksum, params.dict_id) == (
        0,
        len(serialized),
        True,
        0,
    )
    assert zstandard.ZstdDecompressor().decompress(frame.zstd_frame) == serialized


def test_a_frame_with_a_dictionary_names_it_in_the_message_and_the_header(
    dictionary: bytes,
) -> None:
    serialized = captured_report().SerializeToString()
    frame = Encoder(dictionary, 7).encode(serialized)
    params = zstandard.get_frame_parameters(frame.zstd_frame)
    assert (frame.dictionary_id, params.content_size, params.has_checksum, params.dict_id) == (
        7,
        len(serialized),
        True,
        7,
    )
    zdict = zstandard.ZstdCompressionDict(dictionary)
    assert zstandard.ZstdDecompressor(dict_data=zdict).decompress(frame.zstd_frame) == serialized
    # The point of the dictionary: the frame is far smaller than without one.
    assert len(frame.zstd_frame) < len(encode_report(serialized).zstd_frame) / 2


def test_one_encoder_encodes_many_reports_each_as_its_own_frame(dictionary: bytes) -> None:
    encoder = Encoder(dictionary, 7)
    reports = [r.SerializeToString() for r in varied_reports(8, seed=2)]
    frames = [encoder.encode(r) for r in reports]
    zdict = zstandard.ZstdCompressionDict(dictionary)
    decompressor = zstandard.ZstdDecompressor(dict_data=zdict)
    assert [decompressor.decompress(f.zstd_frame) for f in frames] == reports
    assert all(isinstance(f, wire_pb2.ReportFrame) for f in frames)


def test_an_empty_report_still_makes_a_frame_declaring_size_zero() -> None:
    frame = encode_report(b"")
    assert zstandard.get_frame_parameters(frame.zstd_frame).content_size == 0


def test_a_dictionary_id_that_is_not_the_one_inside_the_dictionary_is_refused(
    dictionary: bytes,
) -> None:
    with pytest.raises(ValueError) as caught:
        compressor_for(dictionary, 8)
    assert str(caught.value) == (
        "the dictionary's content says it is dictionary 7, not 8: "
        "use the content and id of the same Dictionary message"
    )


def test_a_dictionary_id_without_a_dictionary_is_refused() -> None:
    with pytest.raises(ValueError, match="dictionary id 3 given without its dictionary"):
        Encoder(None, 3)


def test_raw_content_without_a_dictionary_header_is_refused() -> None:
    # Bytes without zstd's dictionary magic load as "raw content" with id 0: frames
    # made with them could never name a dictionary the server knows.
    for dictionary_id in (0, 5):
        with pytest.raises(ValueError) as caught:
            compressor_for(b"just some bytes, not a trained dictionary" * 10, dictionary_id)
        assert str(caught.value) == (
            "the dictionary has no id inside (raw bytes, not a trained zstd dictionary): "
            "use Dictionary.content as the server sent it"
        )
