"""Property, against a real `probelink-server serve` process: 10,000 mutated frames.

    hypothesis draws batches of 100 mutated frames (tests/server/mutations.py)
    -> one Connect stream per batch, pipelined -> every answer checked
    -> afterwards: what is stored, a fresh upload, health, the process's RSS

Each frame gets exactly one answer naming its sequence number. An ack only when the
frame still decodes (checked here with python-zstandard, by the wire contract's rules)
to exactly the content of a report that was really sent, and carries the device's
signature of that content, naming that report's id; a refusal otherwise, with a known
reason, the gRPC code `status_of` gives that reason and a message. Afterwards the
server stores exactly the reports it acked, each equal to the one sent and marked
verified with the device's key, still takes a fresh report, says SERVING, logged the
signature refusals it saw without flooding its log, and its resident memory grew by
less than a bound between the first 1,000 frames and the end.

Runs twice: against a server with no dictionary, and against one that trained a
dictionary from 100 stored reports (frames are then made with and without it). The
mutations are derandomized; the trained dictionary is the server's own and may differ
from run to run, so the second run's frames (not its checks) vary a little.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import zstandard
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probelink import wire
from probelink.channel import bearer, open_channel
from probelink.server.errors import IngestRefused, status_of
from probelink.server.ingest.dictionaries import MIN_TRAINING_REPORTS
from probelink.server.ingest.frames import DEFAULT_MAX_CONTENT_SIZE, MAX_WINDOW_SIZE
from probelink.signing import DeviceKey, verify
from probelink.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    report_pb2,
    reports_pb2,
    reports_pb2_grpc,
    wire_pb2,
)
from tests.server.ingest.reports import varied_reports
from tests.server.mutations import Sent, mutated
from tests.server.running import ServerProcess

MiB = 1 << 20
BATCH = 100
BATCHES = 100
WARM_UP_FRAMES = 1_000
# Generous: the server keeps nothing per frame; this catches a leak of ~3 KiB a frame.
RSS_GROWTH_LIMIT = 30 * MiB
KNOWN_REASONS = set(wire_pb2.RefusalReason.values()) - {wire_pb2.REFUSAL_REASON_UNSPECIFIED}


@dataclass
class Target:
    """The server under test, the device talking to it, and what it was honestly sent."""

    proc: ServerProcess
    channel: grpc.Channel
    credential: str
    key: DeviceKey
    admin_token: str
    # The valid frames the mutations start from.
    sent: list[Sent]
    # Dictionary id -> its content, for every dictionary the server issued (0: none).
    dictionaries: dict[int, bytes]
    # Every report sent intact so far, by id; and the id inside each content.
    reports: dict[str, report_pb2.Report] = field(default_factory=dict)
    id_of: dict[bytes, str] = field(default_factory=dict)
    # Reports stored before the run (the dictionary's training set).
    prestored: set[str] = field(default_factory=set)

    @property
    def gateway(self) -> gateway_pb2_grpc.AgentGatewayServiceStub:
        return gateway_pb2_grpc.AgentGatewayServiceStub(self.channel)

    def stream(self, frames: Sequence[wire_pb2.ReportFrame]) -> list[gateway_pb2.ConnectResponse]:
        """Send `frames` (sequence 1..n) pipelined on one Connect stream; every answer.

        The blocking API on purpose: grpc.aio's client can report INTERNAL when its
        write races the server's status (grpc/grpc#36066). The server answers every
        frame in flight after the half-close, then ends the stream with OK.
        """
        current = max(self.dictionaries)
        requests = [
            gateway_pb2.ConnectRequest(hello=gateway_pb2.ConnectHello(dictionary_id=current)),
            *(
                gateway_pb2.ConnectRequest(
                    report=gateway_pb2.ReportUpload(sequence=sequence, frame=frame)
                )
                for sequence, frame in enumerate(frames, start=1)
            ),
        ]
        return list(
            self.gateway.Connect(iter(requests), metadata=bearer(self.credential), timeout=60)
        )

    def remember(self, report: report_pb2.Report) -> bytes:
        content = report.SerializeToString()
        self.reports[report.report_id] = report
        self.id_of[content] = report.report_id
        return content


def rss_bytes(pid: int) -> int:
    """The process's resident set size (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def honest_content(frame: wire_pb2.ReportFrame, dictionaries: dict[int, bytes]) -> bytes | None:
    """What `frame` decodes to by the wire contract, independently of the server; or None.

    The contract: exactly one zstd frame that declares its content size (at most the
    server's limit) and carries a checksum, whose header names no dictionary or the
    one `dictionary_id` names, which must be one the server issued.
    """
    data = frame.zstd_frame
    label = frame.dictionary_id
    if label not in dictionaries:
        return None
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError:
        return None
    if (
        params.content_size in (0, zstandard.CONTENTSIZE_UNKNOWN)
        or params.content_size > DEFAULT_MAX_CONTENT_SIZE
        or params.window_size > MAX_WINDOW_SIZE
        or not params.has_checksum
        or params.dict_id not in (0, label)
    ):
        return None
    dict_data = zstandard.ZstdCompressionDict(dictionaries[label]) if label else None
    # Streaming, so a forged header cannot make this side allocate what it declares.
    decompressor = zstandard.ZstdDecompressor(dict_data=dict_data).decompressobj()
    try:
        content = decompressor.decompress(data)
    except zstandard.ZstdError:
        return None
    if not decompressor.eof or decompressor.unused_data or len(content) != params.content_size:
        return None
    return content


def code_of(reason: wire_pb2.RefusalReason.ValueType) -> int:
    return int(status_of(IngestRefused(reason, "")).value[0])


@dataclass
class Tally:
    """What the run saw, across hypothesis examples."""

    frames: int = 0
    acks: int = 0
    refusals: collections.Counter[str] = field(default_factory=collections.Counter)
    # Report id -> how many acks said "stored now" (not a duplicate).
    first_stores: collections.Counter[str] = field(default_factory=collections.Counter)
    acked: set[str] = field(default_factory=set)
    warm_rss: int | None = None


def check_batch(target: Target, frames: Sequence[wire_pb2.ReportFrame], tally: Tally) -> None:
    answers = target.stream(frames)
    by_sequence: dict[int, list[wire_pb2.ReportAck | wire_pb2.ReportRefusal]] = (
        collections.defaultdict(list)
    )
    for message in answers:
        body = message.WhichOneof("body")
        if body == "acks":
            for ack in message.acks.acks:
                by_sequence[ack.sequence].append(ack)
        elif body == "refusal":
            by_sequence[message.refusal.sequence].append(message.refusal)
        else:
            assert body == "dictionary", message
    assert set(by_sequence) == set(range(1, len(frames) + 1)), sorted(by_sequence)
    for sequence, frame in enumerate(frames, start=1):
        answered = by_sequence[sequence]
        assert len(answered) == 1, (sequence, answered)
        (answer,) = answered
        content = honest_content(frame, target.dictionaries)
        if content is not None and not verify(
            target.key.public_key, frame.signature, hashlib.sha256(content).digest()
        ):
            content = None  # not what the device signed: it must be refused
        expected_id = None if content is None else target.id_of.get(content)
        data = frame.zstd_frame
        where = (
            f"frame {sequence} (dictionary_id {frame.dictionary_id}, {len(data)} bytes, "
            f"starts {data[:16].hex()})"
        )
        if expected_id is not None:
            # Still exactly a report that was sent: stored (or already held), not refused.
            assert isinstance(answer, wire_pb2.ReportAck), (where, answer)
            assert answer.report_id == expected_id, (where, answer)
            tally.acks += 1
            tally.acked.add(answer.report_id)
            if not answer.duplicate:
                tally.first_stores[answer.report_id] += 1
        else:
            assert isinstance(answer, wire_pb2.ReportRefusal), (where, answer)
            assert answer.reason in KNOWN_REASONS, (where, answer)
            assert answer.code == code_of(answer.reason), (where, answer)
            assert answer.message.strip(), (where, answer)
            tally.refusals[wire_pb2.RefusalReason.Name(answer.reason)] += 1
    before = tally.frames
    tally.frames += len(frames)
    if before < WARM_UP_FRAMES <= tally.frames:
        assert target.proc.proc is not None
        tally.warm_rss = rss_bytes(target.proc.proc.pid)


def stored_reports(target: Target) -> dict[str, reports_pb2.GetReportResponse]:
    """Every report the server holds, read back through ReportsService as an admin."""
    stub = reports_pb2_grpc.ReportsServiceStub(target.channel)
    metadata = bearer(target.admin_token)
    ids: list[str] = []
    token = ""
    while True:
        page = stub.ListReports(
            reports_pb2.ListReportsRequest(page_size=500, page_token=token),
            metadata=metadata,
            timeout=30,
        )
        ids += [summary.report_id for summary in page.reports]
        token = page.next_page_token
        if not token:
            break
    return {
        report_id: stub.GetReport(
            reports_pb2.GetReportRequest(report_id=report_id), metadata=metadata, timeout=30
        )
        for report_id in ids
    }


def _train(target: Target, reports: Sequence[report_pb2.Report]) -> wire_pb2.Dictionary:
    """Store `reports` intact, then have the server train a dictionary from them."""
    encoder = wire.Encoder(key=target.key)
    answers = target.stream([encoder.encode(target.remember(r)) for r in reports])
    assert sum(len(a.acks.acks) for a in answers) == len(reports), answers
    target.prestored |= {r.report_id for r in reports}
    admin = admin_pb2_grpc.AdminServiceStub(target.channel)
    return admin.TrainDictionary(
        admin_pb2.TrainDictionaryRequest(), metadata=bearer(target.admin_token), timeout=120
    ).dictionary


@pytest.fixture(scope="module", params=["no dictionary", "trained dictionary"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    data = tmp_path_factory.mktemp("ingest-property") / "data"
    # Dictionaries only when the test asks: an automatic one would change the rules mid-run.
    with (
        ServerProcess(data, "--dict-train-after", "0") as proc,
        open_channel(proc.address) as channel,
    ):
        key = DeviceKey.generate()
        enrolled = gateway_pb2_grpc.AgentGatewayServiceStub(channel).Enroll(
            gateway_pb2.EnrollRequest(
                enroll_secret=(data / "enroll.secret").read_text().strip(),
                identity=report_pb2.DeviceIdentity(manufacturer="Probelink Labs", model="Fuzz"),
                agent_version="test",
                device_public_key=key.public_key,
            ),
            timeout=30,
        )
        target = Target(
            proc=proc,
            channel=channel,
            credential=enrolled.credential,
            key=key,
            admin_token=(data / "admin.token").read_text().strip(),
            sent=[],
            dictionaries={0: b""},
        )
        corpus = varied_reports(MIN_TRAINING_REPORTS + 8, seed=33)
        training, originals = corpus[:MIN_TRAINING_REPORTS], corpus[MIN_TRAINING_REPORTS:]
        encoders = [wire.Encoder(key=key)]
        if request.param == "trained dictionary":
            trained = _train(target, training)
            target.dictionaries[trained.dictionary_id] = trained.content
            encoders.append(wire.Encoder(trained.content, trained.dictionary_id, key=key))
            originals = originals[:4]  # each sent with and without the dictionary
        for report in originals:
            content = target.remember(report)
            for encoder in encoders:
                frame = encoder.encode(content)
                assert honest_content(frame, target.dictionaries) == content
                target.sent.append(Sent.of(frame, content))
        yield target


def test_mutated_frames_are_answered_one_by_one_and_none_is_stored(target: Target) -> None:
    tally = Tally()
    batch = st.lists(mutated(target.sent), min_size=BATCH, max_size=BATCH)

    @settings(
        max_examples=BATCHES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(cases=batch)
    def run(cases: list[tuple[wire_pb2.ReportFrame, set[bytes]]]) -> None:
        check_batch(target, [frame for frame, _ in cases], tally)

    run()
    assert tally.frames >= BATCHES * BATCH, tally
    assert tally.acks and len(tally.refusals) > 5, tally  # the run exercised both sides
    assert target.proc.proc is not None and target.proc.proc.poll() is None, "server died"
    end_rss = rss_bytes(target.proc.proc.pid)

    # Stored once each, and only what was acked: every stored report is one sent intact.
    assert all(n == 1 for n in tally.first_stores.values()), tally.first_stores
    stored = stored_reports(target)
    assert set(stored) == set(tally.first_stores) | target.prestored
    assert tally.acked <= set(stored)
    for report_id, got in stored.items():
        assert report_id in target.reports, f"stored {report_id}, which was never sent intact"
        sent = target.reports[report_id]
        assert got.report == sent
        assert got.summary.report_bytes == len(sent.SerializeToString())
        assert (got.summary.signature, got.summary.signing_key) == (
            reports_pb2.SIGNATURE_VERDICT_VERIFIED,
            target.key.key_id,
        )
        assert verify(
            got.device_public_key, got.signature, hashlib.sha256(got.serialized_report).digest()
        )

    # Signature refusals reached the server's log, but not one line each.
    signature_refusals = (
        tally.refusals["REFUSAL_REASON_SIGNATURE_INVALID"]
        + tally.refusals["REFUSAL_REASON_SIGNATURE_MISSING"]
    )
    logged = [line for line in target.proc.stderr().splitlines() if "WARNING" in line]
    assert signature_refusals > 10 and logged, (signature_refusals, logged[:3])
    assert all("signature_" in line and target.key.key_id in line for line in logged), logged[:3]
    assert len(logged) < signature_refusals

    # Still serving: a fresh report is stored, and health says so.
    fresh = varied_reports(1, seed=34)[0]
    answers = target.stream([wire.Encoder(key=target.key).encode(target.remember(fresh))])
    acks = [ack for answer in answers for ack in answer.acks.acks]
    assert [(a.report_id, a.duplicate) for a in acks] == [(fresh.report_id, False)], answers
    health = health_pb2_grpc.HealthStub(target.channel)
    status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING

    # Memory stayed flat from the warm-up to the end.
    assert tally.warm_rss is not None
    growth = end_rss - tally.warm_rss
    summary = (
        f"server RSS after {WARM_UP_FRAMES} frames {tally.warm_rss / MiB:.1f} MiB, "
        f"after {tally.frames} frames {end_rss / MiB:.1f} MiB (growth {growth / MiB:+.1f} MiB, "
        f"limit {RSS_GROWTH_LIMIT / MiB:.0f} MiB); {tally.acks} acked, refused: "
        f"{dict(sorted(tally.refusals.items()))}"
    )
    print(summary)
    assert growth < RSS_GROWTH_LIMIT, summary
