"""`check --upload`: send the self-check's report to a server, enrolling on first use.

    plan = UploadPlan.from_options(server="127.0.0.1:50051", secret_file=Path("enroll.secret"),
                                   state_dir=Path("~/.local/state/probelink-agent"))
    outcome = upload_report(report, plan, say=print)      # UploadOutcome, or UploadFailed
    outcome.report_id, outcome.duplicate

The plan is checked before any probe runs (UploadSetupError: bad input, exit 2), so a
person learns about a missing secret — or a damaged signing key — in a second, not after
the check. Then:

1. No kept credential: Enroll with the secret and the device's public key (its signing
   key is made on first use, `AgentState.device_key`); keep the credential (0600) and the
   dictionary the server sent, in the state dir (`probelink.agent.state`).
2. No kept dictionary: ask for the current one (none yet is fine: frames say id 0).
3. UploadReport, compressed with the kept dictionary and signed with the device key.
   FAILED_PRECONDITION means the server does not know the dictionary (restored from a
   backup, another server): fetch the current one, keep it, re-encode and send once more.
4. UNAUTHENTICATED on a kept credential (revoked, server reset), or a signature the
   server cannot verify (SIGNATURE_MISSING: the device enrolled before it had a key;
   SIGNATURE_INVALID: the server holds another key for it): with a secret, enroll again
   once — registering this key — and retry; without one, say how to.

Any other failure is an UploadFailed carrying the server's message and the status name.
Once stored, the server's diagnosis of the report is fetched (GetDiagnosis) for `check` to
print; if that fails the upload still succeeded, and `diagnosis_problem` says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import zstandard

from probelink import __version__
from probelink.agent.state import AgentState, Enrollment, StateError
from probelink.channel import ClientTls, bearer, open_channel, target_problem
from probelink.signing import DeviceKey
from probelink.v1 import gateway_pb2, gateway_pb2_grpc, report_pb2, wire_pb2
from probelink.wire import REFUSAL_REASON_KEY, Encoder

DEFAULT_SERVER = "127.0.0.1:50051"
SERVER_ENV = "PROBELINK_SERVER"
SECRET_FILE_ENV = "PROBELINK_ENROLL_SECRET_FILE"
TLS_CA_ENV = "PROBELINK_TLS_CA"
# Seconds per call. An upload waits for a durable commit; 30 s covers a busy database.
CALL_TIMEOUT_S = 30.0
# The server diagnoses on request: the device's history is read and judged first.
DIAGNOSIS_TIMEOUT_S = 30.0
# Refusals (REFUSAL_REASON_KEY) that enrolling again, with this device's key, can cure.
_KEY_NOT_REGISTERED = ("signature_missing", "signature_invalid")


class UploadSetupError(Exception):
    """The command line cannot lead to an upload; the message says what to pass."""


class UploadFailed(Exception):
    """The upload did not happen; `status` is the gRPC status name (or a local cause)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadPlan:
    """Where to upload, as whom, and with which secret if the device must enroll."""

    server: str
    state: AgentState
    secret: str | None = None
    secret_file: Path | None = None
    tls: ClientTls | None = None

    @classmethod
    def from_options(
        cls,
        server: str,
        state_dir: Path,
        secret_file: Path | None = None,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> UploadPlan:
        """Check every option; UploadSetupError says what to fix."""
        address = check_address(server)
        state = AgentState(state_dir)
        try:
            state.ensure()
            has_credential = state.credential() is not None
        except StateError as err:
            raise UploadSetupError(f"{err} (choose another with --state-dir)") from None
        try:
            state.device_key()  # made now if new; a damaged one is found before the check
        except StateError as err:
            raise UploadSetupError(str(err)) from None
        secret = read_secret(secret_file) if secret_file is not None else None
        if secret is None and not has_credential:
            raise UploadSetupError(
                f"--upload: this device has not enrolled yet (no credential in {state_dir}); "
                f"give --enroll-secret-file FILE (or set {SECRET_FILE_ENV}) with the enroll "
                "secret an admin handed out (the server's data dir holds one in enroll.secret)"
            )
        return cls(address, state, secret, secret_file, _tls(tls_ca, tls_cert, tls_key))


def check_address(server: str) -> str:
    """`server` if it reads HOST:PORT (or [v6]:PORT), else UploadSetupError."""
    problem = target_problem(server)
    if problem is not None:
        raise UploadSetupError(problem)
    return server.strip()


def read_secret(path: Path) -> str:
    """The enroll secret in `path`, stripped; UploadSetupError if unreadable or empty."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise UploadSetupError(f"cannot read the enroll secret from {path}: {why}") from None
    if not text:
        raise UploadSetupError(
            f"{path} is empty: it should hold one enroll secret (ple_…), "
            "e.g. a copy of the server's data-dir/enroll.secret"
        )
    return text


def _tls(ca: Path | None, cert: Path | None, key: Path | None) -> ClientTls | None:
    if (cert is None) != (key is None):
        raise UploadSetupError(
            "--tls-cert and --tls-key go together (a client certificate and its key)"
        )
    if ca is None and cert is None:
        return None
    for option, path in (("--tls-ca", ca), ("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not path.is_file():
            raise UploadSetupError(f"{option} {path}: no such file")
    return ClientTls(ca=ca, cert=cert, key=key)


@dataclass
class UploadOutcome:
    """What the server acked, and what the agent had to do to get there."""

    server: str
    report_id: str
    device_id: str
    duplicate: bool
    # RFC 3339, UTC, as the server committed it.
    stored_at: str
    # The dictionary the stored frame was compressed with; 0 = none.
    dictionary_id: int
    enrolled: bool = False
    # The server's diagnosis of the report (docs/diagnosis.md), or why there is none: the
    # report is stored either way, so a diagnosis that fails does not fail the upload.
    diagnosis: dict[str, Any] | None = None
    diagnosis_problem: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "server": self.server,
            "report_id": self.report_id,
            "device_id": self.device_id,
            "duplicate": self.duplicate,
            "stored_at": self.stored_at,
            "dictionary_id": self.dictionary_id,
            "enrolled": self.enrolled,
            "diagnosis": self.diagnosis,
            "diagnosis_problem": self.diagnosis_problem or None,
        }


def upload_report(
    report: report_pb2.Report, plan: UploadPlan, say: Callable[[str], None] = lambda _: None
) -> UploadOutcome:
    """Upload `report` (enrolling first if needed); UploadFailed says why it did not."""
    try:
        channel = open_channel(plan.server, plan.tls)
    except OSError as err:  # ClientTls reads the PEM files here
        raise UploadFailed(f"cannot read the TLS files: {err}", "TLS_FILES") from None
    try:
        uploader = _Uploader(plan, gateway_pb2_grpc.AgentGatewayServiceStub(channel), say)
        outcome = uploader.run(report)
        _diagnose(outcome, channel, uploader.credential)
        return outcome
    except StateError as err:
        raise UploadFailed(str(err), "STATE_DIR") from None
    finally:
        channel.close()


def _diagnose(outcome: UploadOutcome, channel: grpc.Channel, credential: str) -> None:
    """Ask the server for the uploaded report's diagnosis; a failure is noted, not raised."""
    # Here, not at the top: the daemon imports this module, and its idle memory budget
    # has no room for the reports service's code, which only `check --upload` uses.
    from probelink.v1 import reports_pb2, reports_pb2_grpc

    reports = reports_pb2_grpc.ReportsServiceStub(channel)
    try:
        response = reports.GetDiagnosis(
            reports_pb2.GetDiagnosisRequest(report_id=outcome.report_id),
            metadata=bearer(credential),
            timeout=DIAGNOSIS_TIMEOUT_S,
        )
        outcome.diagnosis = json.loads(response.diagnosis_json)
    except grpc.RpcError as error:
        outcome.diagnosis_problem = f"the server did not diagnose it: {_details(error)}"
    except ValueError:
        outcome.diagnosis_problem = "the server's diagnosis is not valid JSON"


@dataclass
class _Uploader:
    plan: UploadPlan
    gateway: gateway_pb2_grpc.AgentGatewayServiceStub
    say: Callable[[str], None]
    enrolled: bool = False
    # Set once this run knows the server's current dictionary (from Enroll or a fetch).
    dictionary_checked: bool = False
    device_id: str = field(default="")
    key: DeviceKey | None = None
    # The credential the report went up with (the diagnosis is fetched with it).
    credential: str = ""

    @property
    def state(self) -> AgentState:
        return self.plan.state

    def run(self, report: report_pb2.Report) -> UploadOutcome:
        self.key = self.state.device_key()
        credential = self.state.credential()
        if credential is None:
            credential = self._enroll(report.device)
        kept = self.state.enrollment()
        self.device_id = kept.device_id if kept else ""
        try:
            return self._upload(report, credential)
        except grpc.RpcError as error:
            problem = None if self.enrolled else _enroll_again_for(error)
            if problem is None:
                raise self._failed(error) from None
            details, status = _details(error), _code(error)
        where = ""
        if kept is not None and kept.server != self.plan.server:
            where = f"; it enrolled with {kept.server}"
        if self.plan.secret is None:
            raise UploadFailed(
                f"{problem} ({details}{where}); enroll again with --enroll-secret-file",
                status.name if status is not None else "UNKNOWN",
            )
        self.say(
            f"{problem[0].upper()}{problem[1:]} ({details}{where}); enrolling again "
            f"with the secret in {self.plan.secret_file}."
        )
        self.state.forget_enrollment()
        credential = self._enroll(report.device)
        try:
            return self._upload(report, credential)
        except grpc.RpcError as error:
            raise self._failed(error) from None

    def _enroll(self, identity: report_pb2.DeviceIdentity) -> str:
        assert self.plan.secret is not None  # UploadPlan refuses "no secret, no credential"
        try:
            response = self.gateway.Enroll(
                gateway_pb2.EnrollRequest(
                    enroll_secret=self.plan.secret,
                    identity=identity,
                    agent_version=__version__,
                    device_public_key=self._key().public_key,
                ),
                timeout=CALL_TIMEOUT_S,
            )
        except grpc.RpcError as error:
            if _code(error) == grpc.StatusCode.UNAUTHENTICATED:
                raise UploadFailed(
                    f"the enroll secret in {self.plan.secret_file} was refused "
                    f"({_details(error)}); ask an admin for a current one",
                    "UNAUTHENTICATED",
                ) from None
            raise self._failed(error) from None
        self.state.save_enrollment(
            Enrollment(device_id=response.device_id, server=self.plan.server),
            response.credential,
        )
        self.enrolled = True
        self.device_id = response.device_id
        self.say(f"Enrolled with {self.plan.server} as device {response.device_id}.")
        # Enroll answers with the current dictionary, or none: either way it is known now.
        self._keep(response.dictionary if response.HasField("dictionary") else None)
        self.dictionary_checked = True
        return response.credential

    def _upload(self, report: report_pb2.Report, credential: str) -> UploadOutcome:
        self.credential = credential
        metadata = bearer(credential)
        if not self.dictionary_checked and self.state.dictionary() is None:
            # A server trains its dictionary after enough reports: pick it up once kept.
            self._fetch_current(metadata)
        serialized = report.SerializeToString()
        encoder = self._encoder()
        try:
            response = self._send(encoder.encode(serialized), metadata)
        except grpc.RpcError as error:
            if _code(error) != grpc.StatusCode.FAILED_PRECONDITION or encoder.dictionary_id == 0:
                raise
            # The server never issued our dictionary (restored from a backup, or another
            # server): take its current one and send once more.
            self.say(
                f"The server does not know dictionary {encoder.dictionary_id}; "
                "fetching its current one."
            )
            self._fetch_current(metadata)
            encoder = self._encoder()
            response = self._send(encoder.encode(serialized), metadata)
        ack = response.ack
        return UploadOutcome(
            server=self.plan.server,
            report_id=ack.report_id,
            device_id=self.device_id,
            duplicate=ack.duplicate,
            stored_at=ack.stored_at.ToJsonString() if ack.HasField("stored_at") else "",
            dictionary_id=encoder.dictionary_id,
            enrolled=self.enrolled,
        )

    def _send(
        self, frame: wire_pb2.ReportFrame, metadata: tuple[tuple[str, str], ...]
    ) -> gateway_pb2.UploadReportResponse:
        request = gateway_pb2.UploadReportRequest(frame=frame)
        response: gateway_pb2.UploadReportResponse = self.gateway.UploadReport(
            request, metadata=metadata, timeout=CALL_TIMEOUT_S
        )
        return response

    def _fetch_current(self, metadata: tuple[tuple[str, str], ...]) -> None:
        try:
            response = self.gateway.GetDictionary(
                gateway_pb2.GetDictionaryRequest(dictionary_id=0),
                metadata=metadata,
                timeout=CALL_TIMEOUT_S,
            )
        except grpc.RpcError as error:
            if _code(error) != grpc.StatusCode.NOT_FOUND:
                raise
            self._keep(None)  # the server has none yet: frames go without one
        else:
            self._keep(response.dictionary)
        self.dictionary_checked = True

    def _keep(self, dictionary: wire_pb2.Dictionary | None) -> None:
        if dictionary is not None and dictionary.dictionary_id:
            self.state.save_dictionary(dictionary.dictionary_id, dictionary.content)
        else:
            self.state.forget_dictionary()

    def _key(self) -> DeviceKey:
        if self.key is None:
            self.key = self.state.device_key()
        return self.key

    def _encoder(self) -> Encoder:
        """A signing encoder with the kept dictionary (or none)."""
        key = self._key()
        kept = self.state.dictionary()
        if kept is None:
            return Encoder(key=key)
        dictionary_id, content = kept
        try:
            return Encoder(content, dictionary_id, key=key)
        except (ValueError, zstandard.ZstdError) as err:
            # A damaged file in the state dir: drop it, compress without, fetch next time.
            self.say(f"The kept dictionary {dictionary_id} is unusable ({err}); dropping it.")
            self.state.forget_dictionary()
            return Encoder(key=key)

    def _failed(self, error: grpc.RpcError) -> UploadFailed:
        code = _code(error)
        details = _details(error)
        address = self.plan.server
        if code == grpc.StatusCode.DEADLINE_EXCEEDED or (
            code == grpc.StatusCode.UNAVAILABLE and not _refusal_reason(error)
        ):
            advice = f"is the server running at {address}?"
            if self.plan.tls is None:
                advice += " If it uses TLS, give --tls-ca."
            message = f"cannot reach the server at {address} ({details}): {advice}"
        else:
            message = f"the server refused the upload: {details}"
        return UploadFailed(message, code.name if code is not None else "UNKNOWN")


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    code = error.code() if isinstance(error, grpc.Call) else None
    return code if isinstance(code, grpc.StatusCode) else None


def _details(error: grpc.RpcError) -> str:
    details = error.details() if isinstance(error, grpc.Call) else None
    if details:
        return str(details)
    code = _code(error)
    return code.name if code is not None else str(error)


def _enroll_again_for(error: grpc.RpcError) -> str | None:
    """What went wrong, when enrolling again may cure it; None when it cannot."""
    code = _code(error)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return "this device's credential was refused"
    if code == grpc.StatusCode.INVALID_ARGUMENT and _refusal_reason(error) in _KEY_NOT_REGISTERED:
        return "the server cannot verify this device's signature with the key it holds"
    return None


def _refusal_reason(error: grpc.RpcError) -> str:
    """The reason a reached server refused with; "" when no server answered (an
    UNAVAILABLE without it means the server could not be reached at all)."""
    trailing: tuple[tuple[str, str | bytes], ...] = ()
    if isinstance(error, grpc.Call):
        trailing = error.trailing_metadata() or ()
    return next((str(value) for key, value in trailing if key == REFUSAL_REASON_KEY), "")
