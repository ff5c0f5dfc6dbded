"""Property: a mutated frame is decoded to exactly the original report, or refused.

Ten thousand signed frames with bit flips, truncations, insertions, deletions, splices
of two valid frames, rewritten header fields, relabeled dictionaries and damaged or
swapped signatures go through the ingest path (decode_frame, the signature check, then
summarize). Each either yields exactly the bytes of a report that was really sent and
that its signature signs, or raises IngestRefused — never another exception, never
other content — and no frame makes the path allocate much or keep anything. The
strategies live in tests/server/mutations.py, shared with the same property against a
real server process (tests/server/test_ingest_property.py).
"""

from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings

from probelink.server.errors import IngestRefused
from probelink.server.ingest.decode import decode_frame
from probelink.server.ingest.dictionaries import MIN_TRAINING_REPORTS, DictionaryBook, train
from probelink.server.ingest.signature import SignatureChecker
from probelink.server.ingest.validate import summarize
from probelink.server.store.base import DictionaryRecord
from probelink.signing import DeviceKey
from probelink.v1 import wire_pb2
from probelink.wire import Encoder
from tests.server.ingest.reports import BASE_SECONDS, varied_reports
from tests.server.mutations import Sent, mutated

MiB = 1 << 20
NOW_US = (BASE_SECONDS + 365 * 86_400) * 1_000_000
KEY = DeviceKey.generate()
SIGNATURES = SignatureChecker()


def _sent() -> tuple[DictionaryBook, list[Sent]]:
    reports = [r.SerializeToString() for r in varied_reports(MIN_TRAINING_REPORTS + 4, seed=21)]
    samples, sent_reports = reports[:MIN_TRAINING_REPORTS], reports[MIN_TRAINING_REPORTS:]
    content = train(samples, 1, 16 * 1024)
    book = DictionaryBook([DictionaryRecord(1, content, len(samples), 0)])
    encoders = [Encoder(key=KEY), Encoder(content, 1, key=KEY)]
    sent = [
        Sent.of(encoder.encode(report), report) for report in sent_reports for encoder in encoders
    ]
    return book, sent


BOOK, SENT = _sent()
CONTENTS = {s.content for s in SENT}


# Across the run: bytes each frame left allocated, and the largest peak of one frame.
RETAINED: list[int] = []


def ingest(frame: wire_pb2.ReportFrame, allowed: set[bytes]) -> tuple[int, bool]:
    """(refusal reason or 0, whether the outcome is sound): nothing that allocates is
    returned, so what the traced window still holds afterwards was kept by the path."""
    try:
        decoded = decode_frame(frame, BOOK, MiB)
        SIGNATURES.check(frame.signature, KEY.public_key, decoded, "fuzzed device")
        summarize(decoded.report, NOW_US)
    except IngestRefused as refused:
        return refused.reason, bool(str(refused)) and refused.reason != 0
    sound = decoded.serialized in allowed
    return 0, sound and decoded.report.SerializeToString() == decoded.serialized


@settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=mutated(SENT))
def test_a_mutated_frame_is_the_original_or_refused(
    case: tuple[wire_pb2.ReportFrame, set[bytes]],
) -> None:
    frame, allowed = case
    # Traced around the ingest path only: hypothesis's own bookkeeping is not ours.
    tracemalloc.start()
    try:
        reason, sound = ingest(frame, allowed)
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    RETAINED.append(retained)
    # Refused with a reason and a message, or decoded to exactly what was sent.
    assert sound, (reason, frame)
    # The largest honest allocation is one report (~12 KiB here); a forged header may
    # declare up to the 1 MiB limit, which bounds what any mutation can make us allocate.
    assert peak < 2 * MiB
    # Memory stays flat: whatever frames came so far, the path kept (almost) nothing.
    assert sum(RETAINED) < 64 * 1024, (sum(RETAINED), max(RETAINED))


def test_every_valid_frame_decodes_to_what_was_sent() -> None:
    for sent in SENT:
        frame = wire_pb2.ReportFrame(dictionary_id=sent.dictionary_id, zstd_frame=sent.frame)
        decoded = decode_frame(frame, BOOK, MiB)
        assert decoded.serialized == sent.content
        assert SIGNATURES.check(sent.signature, KEY.public_key, decoded, "d").signing_key == (
            KEY.key_id
        )
    assert len(CONTENTS) == len(SENT) // 2
    # Deterministic: the same content carries the same signature with or without a dictionary.
    assert len({s.signature for s in SENT}) == len(CONTENTS)
