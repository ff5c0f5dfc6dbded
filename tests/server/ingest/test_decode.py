"""decode_frame: real reports round-trip; damaged, mislabeled and foreign frames are refused."""

from __future__ import annotations

import hashlib

import pytest
import zstandard

from probelink.server.errors import IngestRefused
from probelink.server.ingest.decode import DecodedReport, decode_frame
from probelink.server.ingest.dictionaries import MIN_TRAINING_REPORTS, DictionaryBook, train
from probelink.server.ingest.frames import inspect_frame
from probelink.server.store.base import DictionaryRecord
from probelink.v1 import report_pb2, wire_pb2
from probelink.wire import Encoder, encode_report
from tests.server.ingest.reports import MACHINE_NAMES, captured_report, varied_reports
from tests.server.ingest.zstd_frames import header, split

MiB = 1 << 20
CHECKED = zstandard.ZstdCompressor(write_content_size=True, write_checksum=True)


@pytest.fixture(scope="module")
def contents() -> dict[int, bytes]:
    samples = [r.SerializeToString() for r in varied_reports(MIN_TRAINING_REPORTS, seed=8)]
    return {1: train(samples, 1, 16 * 1024), 2: train(samples[::-1], 2, 8 * 1024)}


@pytest.fixture(scope="module")
def book(contents: dict[int, bytes]) -> DictionaryBook:
    return DictionaryBook(
        DictionaryRecord(i, c, MIN_TRAINING_REPORTS, 0) for i, c in contents.items()
    )


def refusal(frame: wire_pb2.ReportFrame, book: DictionaryBook) -> IngestRefused:
    with pytest.raises(IngestRefused) as caught:
        decode_frame(frame, book, MiB)
    return caught.value


def test_every_captured_machine_round_trips_with_and_without_a_dictionary(
    book: DictionaryBook, contents: dict[int, bytes]
) -> None:
    for machine in MACHINE_NAMES:
        report = captured_report(machine)
        serialized = report.SerializeToString()
        for encoder in (Encoder(), Encoder(contents[1], 1), Encoder(contents[2], 2)):
            frame = encoder.encode(serialized)
            assert decode_frame(frame, book, MiB) == DecodedReport(
                report=report,
                serialized=serialized,
                sha256=hashlib.sha256(serialized).digest(),
                info=inspect_frame(frame.zstd_frame, MiB),
            )


def test_the_same_report_under_another_dictionary_has_the_same_sha(
    book: DictionaryBook, contents: dict[int, bytes]
) -> None:
    serialized = captured_report().SerializeToString()
    plain = decode_frame(encode_report(serialized), book, MiB)
    packed = decode_frame(Encoder(contents[1], 1).encode(serialized), book, MiB)
    assert plain.sha256 == packed.sha256
    assert plain.info.frame_length > packed.info.frame_length


def test_a_frame_whose_header_omits_the_dictionary_id_decodes_with_the_named_one(
    book: DictionaryBook, contents: dict[int, bytes]
) -> None:
    serialized = captured_report().SerializeToString()
    zdict = zstandard.ZstdCompressionDict(contents[1])
    data = zstandard.ZstdCompressor(
        dict_data=zdict, write_checksum=True, write_content_size=True, write_dict_id=False
    ).compress(serialized)
    decoded = decode_frame(wire_pb2.ReportFrame(dictionary_id=1, zstd_frame=data), book, MiB)
    assert (decoded.serialized, decoded.info.dictionary_id_in_header) == (serialized, 0)


def test_an_unknown_dictionary_tells_the_agent_to_fetch_the_current_one(
    book: DictionaryBook, contents: dict[int, bytes]
) -> None:
    serialized = captured_report().SerializeToString()
    zdict = zstandard.train_dictionary(8192, [serialized] * 10, dict_id=9)
    frame = Encoder(zdict.as_bytes(), 9).encode(serialized)
    refused = refusal(frame, book)
    assert (refused.reason, str(refused)) == (
        wire_pb2.REFUSAL_REASON_UNKNOWN_DICTIONARY,
        "the frame was compressed with dictionary 9, which this server never issued; "
        "this server's current dictionary is 2: fetch it with GetDictionary (or reconnect: "
        "Connect sends it) and re-encode the report",
    )
    refused = refusal(frame, DictionaryBook())
    assert "this server has issued no dictionary yet (use dictionary 0: none)" in str(refused)


@pytest.mark.parametrize(("in_header", "named"), [(1, 2), (1, 0), (2, 9)])
def test_a_header_naming_another_dictionary_than_the_frame_is_refused(
    book: DictionaryBook, contents: dict[int, bytes], in_header: int, named: int
) -> None:
    frame = Encoder(contents[in_header], in_header).encode(captured_report().SerializeToString())
    frame.dictionary_id = named
    refused = refusal(frame, book)
    assert (refused.reason, str(refused)) == (
        wire_pb2.REFUSAL_REASON_CORRUPT,
        f"the frame's zstd header says it was compressed with dictionary {in_header}, "
        f"but ReportFrame.dictionary_id says {named}: set dictionary_id to the dictionary "
        "the frame was compressed with",
    )


def test_a_dictionary_frame_labeled_as_needing_none_is_corrupt(
    book: DictionaryBook, contents: dict[int, bytes]
) -> None:
    # Compressed with dictionary 1, its id left out of the header, sent as "no dictionary".
    zdict = zstandard.ZstdCompressionDict(contents[1])
    data = zstandard.ZstdCompressor(
        dict_data=zdict, write_checksum=True, write_content_size=True, write_dict_id=False
    ).compress(captured_report().SerializeToString())
    refused = refusal(wire_pb2.ReportFrame(dictionary_id=0, zstd_frame=data), book)
    assert refused.reason == wire_pb2.REFUSAL_REASON_CORRUPT
    assert str(refused).startswith("the frame did not decompress (")


def test_flipped_checksum_bytes_are_corrupt(book: DictionaryBook) -> None:
    data = encode_report(captured_report().SerializeToString()).zstd_frame
    for i in range(1, 5):
        damaged = data[:-i] + bytes([data[-i] ^ 0x40]) + data[len(data) - i + 1 :]
        refused = refusal(wire_pb2.ReportFrame(zstd_frame=damaged), book)
        assert refused.reason == wire_pb2.REFUSAL_REASON_CORRUPT, i
        assert "checksum" in str(refused)


def test_a_declared_size_that_is_off_by_one_is_corrupt(book: DictionaryBook) -> None:
    serialized = captured_report().SerializeToString()
    _, body = split(encode_report(serialized).zstd_frame)
    for wrong in (len(serialized) - 1, len(serialized) + 1):
        refused = refusal(wire_pb2.ReportFrame(zstd_frame=header(wrong) + body), book)
        assert refused.reason == wire_pb2.REFUSAL_REASON_CORRUPT


@pytest.mark.parametrize("with_dictionary", [False, True])
def test_no_single_flipped_byte_is_accepted_as_other_content(
    book: DictionaryBook, contents: dict[int, bytes], with_dictionary: bool
) -> None:
    serialized = captured_report("phone-charge-units").SerializeToString()
    encoder = Encoder(contents[1], 1) if with_dictionary else Encoder()
    frame = encoder.encode(serialized)
    data = frame.zstd_frame
    accepted = []
    for i in range(len(data)):
        for flip in (0x01, 0x10, 0xFF):
            damaged = data[:i] + bytes([data[i] ^ flip]) + data[i + 1 :]
            mutated = wire_pb2.ReportFrame(dictionary_id=frame.dictionary_id, zstd_frame=damaged)
            try:
                decoded = decode_frame(mutated, book, MiB)
            except IngestRefused:
                continue
            # Only a flip that changes nothing zstd decodes may pass: the header's unused
            # bit, or a bit the entropy decoder never reads.
            assert decoded.serialized == serialized, (i, flip)
            accepted.append((i, flip))
    assert (4, 0x10) in accepted
    assert len(accepted) < 10, accepted


def test_content_that_is_not_protobuf_is_malformed(book: DictionaryBook) -> None:
    frame = wire_pb2.ReportFrame(zstd_frame=CHECKED.compress(b"\xff\xff\xff\xff\xff garbage"))
    refused = refusal(frame, book)
    assert refused.reason == wire_pb2.REFUSAL_REASON_MALFORMED_REPORT
    assert str(refused).startswith("the content is not a serialized probelink.v1.Report (")


def test_bytes_that_parse_only_as_unknown_fields_are_malformed(book: DictionaryBook) -> None:
    # Field 100 (length-delimited) and field 1 as a varint where a string belongs: protobuf
    # parses both without complaint, as unknown fields.
    content = b"\x08\x05\xa2\x06\x01x"
    assert report_pb2.Report.FromString(content).ListFields() == []
    refused = refusal(wire_pb2.ReportFrame(zstd_frame=CHECKED.compress(content)), book)
    assert (refused.reason, str(refused)) == (
        wire_pb2.REFUSAL_REASON_MALFORMED_REPORT,
        "the content parses with fields a Report does not have (field numbers 1, 100, or "
        "known numbers with the wrong wire type): it is not a serialized probelink.v1.Report "
        "— or the agent is newer than this server: upgrade the server",
    )


def test_a_json_report_is_malformed_or_refused(book: DictionaryBook) -> None:
    content = b'{"report_id": "6f1c0a39-1111-4222-8333-944455556666", "kind": 1}'
    with pytest.raises(IngestRefused) as caught:
        decode_frame(wire_pb2.ReportFrame(zstd_frame=CHECKED.compress(content)), book, MiB)
    assert caught.value.reason == wire_pb2.REFUSAL_REASON_MALFORMED_REPORT


def test_unknown_fields_inside_results_are_kept_for_a_newer_server(book: DictionaryBook) -> None:
    report = captured_report()
    serialized = report.SerializeToString()
    # A newer agent's new field 99 in the first result (tag 99<<3|0 = 792 -> 0x98 0x06).
    first = report.results[0].SerializeToString() + b"\x98\x06\x2a"
    newer = report_pb2.Report()
    newer.CopyFrom(report)
    del newer.results[:]
    newer.results.add().ParseFromString(first)
    newer.results.extend(report.results[1:])
    newer_bytes = newer.SerializeToString()
    assert len(newer_bytes) == len(serialized) + 3
    decoded = decode_frame(encode_report(newer_bytes), book, MiB)
    assert decoded.serialized == newer_bytes
    assert decoded.report.SerializeToString() == newer_bytes


def test_a_frame_declaring_nothing_is_refused_without_decompressing(book: DictionaryBook) -> None:
    frame = wire_pb2.ReportFrame(zstd_frame=CHECKED.compress(b""))
    refused = refusal(frame, book)
    assert refused.reason == wire_pb2.REFUSAL_REASON_MALFORMED_REPORT
    assert "holds 0 bytes" in str(refused)


def test_frame_refusals_come_first(book: DictionaryBook) -> None:
    # A frame both too large and naming an unknown dictionary: the header decides first.
    bomb = CHECKED.compress(bytes(2 * MiB))
    refused = refusal(wire_pb2.ReportFrame(dictionary_id=77, zstd_frame=bomb), book)
    assert refused.reason == wire_pb2.REFUSAL_REASON_TOO_LARGE
