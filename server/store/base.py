"""The storage interface both backends implement, and the records that cross it.

Times are integer microseconds since the Unix epoch, UTC (`*_us`), the same on SQLite
and PostgreSQL. Methods are synchronous and thread-safe: the server calls writes from
its one writer thread and reads from a small pool of reader threads.

    results = store.store_reports([incoming, ...], received_at_us=now_us())
    # one transaction: each is STORED, a DUPLICATE of what was there, or a CONFLICT

Every backend error that means "could not reach or lock the database" is raised as
`probelink.server.errors.StoreUnavailable`; nothing of that call was written.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass

# Roles as stored (the lower-case names of probelink.v1.Role without the prefix).
ROLES = ("device", "customer", "technician", "engineer", "admin")


@dataclass(frozen=True, slots=True)
class ReportSummaryFields:
    """What the server indexes about a report, taken from the parsed Report."""

    manufacturer: str
    model: str
    kind: int  # probelink.v1.ReportKind
    overall: int  # probelink.v1.Status
    agent_version: str
    started_at_us: int
    finished_at_us: int
    result_count: int
    fail_count: int
    warn_count: int
    error_count: int
    # Reports the device's spool evicted unsent, as this report says (Report.agent).
    spool_evicted: int


@dataclass(frozen=True, slots=True)
class SignatureFields:
    """The device's signature of a report, and what the server found when it checked it.

    Reports stored before the server checked signatures have `signature` b"",
    `signing_key` "" and `verdict` 0 (SIGNATURE_VERDICT_UNSPECIFIED).
    """

    # Ed25519 over probelink.signing.signed_message(content_sha256): 64 bytes.
    signature: bytes
    # probelink.signing.key_id of the key it verified with: "SHA256:" + 16 hex digits.
    signing_key: str
    verdict: int  # probelink.v1.SignatureVerdict


UNSIGNED = SignatureFields(b"", "", 0)


@dataclass(frozen=True, slots=True)
class IncomingReport:
    """A validated report on its way into the store."""

    report_id: str
    device_id: str
    # SHA-256 of the serialized Report (not of the frame): the same report re-encoded
    # with another dictionary is still the same report.
    content_sha256: bytes
    # The zstd frame exactly as received; decompress it with `dictionary_id`.
    frame: bytes
    dictionary_id: int
    report_bytes: int
    summary: ReportSummaryFields
    signature: SignatureFields


class StoreOutcome(enum.Enum):
    STORED = "stored"
    # The same report id with the same content and device was there already.
    DUPLICATE = "duplicate"
    # The same report id with different content, or from another device: refused.
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class StoreResult:
    outcome: StoreOutcome
    # When the stored copy was committed (for a DUPLICATE, the first time); 0 for CONFLICT.
    stored_at_us: int


@dataclass(frozen=True, slots=True)
class ReportRow:
    """A stored report's indexed summary."""

    report_id: str
    device_id: str
    received_at_us: int
    dictionary_id: int
    report_bytes: int
    stored_bytes: int
    content_sha256: bytes
    summary: ReportSummaryFields
    signature: SignatureFields


@dataclass(frozen=True, slots=True)
class StoredReport:
    row: ReportRow
    frame: bytes
    # The sending device's registered public key (None: it enrolled before keys were
    # kept, or its record is gone): with the row's signature, the report can be checked
    # again away from the server.
    device_public_key: bytes | None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A person's API token; only the SHA-256 of the secret is kept."""

    token_id: str
    token_hash: bytes
    role: str  # one of ROLES but "device"
    label: str
    device_id: str | None  # a customer token's device
    created_at_us: int
    revoked_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class EnrollSecretRecord:
    secret_id: str
    secret_hash: bytes
    label: str
    created_at_us: int
    revoked_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    device_id: str
    credential_hash: bytes
    enroll_secret_id: str
    manufacturer: str
    model: str
    agent_version: str
    enrolled_at_us: int
    revoked_at_us: int | None = None
    # Its raw Ed25519 public key (32 bytes), registered at enrollment; every report it
    # sends must carry its signature. None for a device enrolled before keys were kept.
    public_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class DictionaryRecord:
    dictionary_id: int
    content: bytes
    trained_on_reports: int
    created_at_us: int


@dataclass(frozen=True, slots=True)
class DiagnosisRecord:
    """A report's diagnosis document (JSON, schema probelink.diagnosis/v1) and what made it."""

    report_id: str
    device_id: str
    ruleset_version: str
    made_at_us: int
    document: str


@dataclass(frozen=True, slots=True)
class WarrantyRecord:
    """A device's purchase facts, which its diagnoses judge warranty by."""

    device_id: str
    purchase_date: str  # ISO 8601 date
    region: str
    plans: tuple[str, ...]
    exclusions: tuple[str, ...]
    updated_at_us: int


@dataclass(frozen=True, slots=True)
class AdvisoryRecord:
    """An advisory raised for a device; one per (device, code), ever."""

    advisory_id: str
    device_id: str
    kind: str  # "trend" or "finding"
    code: str
    severity: str
    text: dict[str, str]  # language -> text
    action: str
    report_id: str
    raised_at_us: int
    delivered_at_us: int | None = None


class Store(abc.ABC):
    """One database holding reports, identities and dictionaries."""

    #: "sqlite" or "postgresql"
    dialect: str

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the data is, for a person (no password): `sqlite /path/x.db`."""

    # -- schema ---------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> int:
        """Apply every pending migration (each in its own transaction); the new version."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The highest applied migration; 0 for an empty database."""

    # -- reports --------------------------------------------------------------------
    @abc.abstractmethod
    def store_reports(
        self, batch: Sequence[IncomingReport], received_at_us: int
    ) -> list[StoreResult]:
        """Store a batch in ONE transaction; one result per item, in order.

        Idempotent by report id: an id already stored with the same content hash and
        device is a DUPLICATE (nothing written); with another hash or device a
        CONFLICT (nothing written, the stored copy untouched). Two items of one batch
        with the same id behave as if sent one after the other.
        """

    @abc.abstractmethod
    def get_report(self, report_id: str) -> StoredReport | None:
        """The report with its frame, and its device's registered public key."""

    @abc.abstractmethod
    def list_reports(
        self, device_id: str | None, limit: int, after: tuple[int, str] | None = None
    ) -> list[ReportRow]:
        """Newest first by (received_at_us, report_id); `after` is the last row's key."""

    @abc.abstractmethod
    def count_reports(self, device_id: str | None = None) -> int: ...

    @abc.abstractmethod
    def sample_frames(self, limit: int) -> list[tuple[int, bytes]]:
        """(dictionary_id, frame) of the newest `limit` reports, to train a dictionary."""

    # -- people's tokens ------------------------------------------------------------
    @abc.abstractmethod
    def add_token(self, token: TokenRecord) -> None: ...

    @abc.abstractmethod
    def token_by_hash(self, token_hash: bytes) -> TokenRecord | None: ...

    @abc.abstractmethod
    def revoke_token(self, token_id: str, at_us: int) -> TokenRecord | None:
        """Mark revoked (keeping the first revocation time); None if no such token."""

    @abc.abstractmethod
    def list_tokens(self) -> list[TokenRecord]: ...

    # -- enroll secrets -------------------------------------------------------------
    @abc.abstractmethod
    def add_enroll_secret(self, secret: EnrollSecretRecord) -> None: ...

    @abc.abstractmethod
    def enroll_secret_by_hash(self, secret_hash: bytes) -> EnrollSecretRecord | None: ...

    @abc.abstractmethod
    def revoke_enroll_secret(self, secret_id: str, at_us: int) -> EnrollSecretRecord | None: ...

    @abc.abstractmethod
    def list_enroll_secrets(self) -> list[EnrollSecretRecord]: ...

    # -- devices --------------------------------------------------------------------
    @abc.abstractmethod
    def add_device(self, device: DeviceRecord) -> None: ...

    @abc.abstractmethod
    def device_by_credential(self, credential_hash: bytes) -> DeviceRecord | None: ...

    @abc.abstractmethod
    def get_device(self, device_id: str) -> DeviceRecord | None: ...

    @abc.abstractmethod
    def revoke_device(self, device_id: str, at_us: int) -> DeviceRecord | None: ...

    @abc.abstractmethod
    def list_devices(self) -> list[DeviceRecord]: ...

    # -- first start ----------------------------------------------------------------
    @abc.abstractmethod
    def bootstrap(self, admin: TokenRecord, secret: EnrollSecretRecord) -> bool:
        """On the very first start only: add the admin token and default enroll secret.

        True if this call did it; False if the database was bootstrapped before (by
        this server or by another replica), in which case nothing is written.
        """

    # -- dictionaries ---------------------------------------------------------------
    @abc.abstractmethod
    def add_dictionary(self, dictionary: DictionaryRecord) -> None:
        """Raises DictionaryIdTaken if the id exists: dictionaries are never replaced."""

    @abc.abstractmethod
    def get_dictionary(self, dictionary_id: int) -> DictionaryRecord | None: ...

    @abc.abstractmethod
    def latest_dictionary(self) -> DictionaryRecord | None: ...

    @abc.abstractmethod
    def max_dictionary_id(self) -> int:
        """0 when none was ever issued."""

    # -- diagnoses, warranty facts, advisories -----------------------------------------
    @abc.abstractmethod
    def device_history(
        self, device_id: str, until_started_us: int, limit: int
    ) -> list[StoredReport]:
        """The device's newest `limit` reports started at or before `until_started_us`,
        oldest first (by the report's own start time)."""

    @abc.abstractmethod
    def newest_report_id(self, device_id: str) -> str | None:
        """The id of the device's newest report by its own start time (no frame read)."""

    @abc.abstractmethod
    def put_diagnosis(self, diagnosis: DiagnosisRecord) -> None:
        """Store or replace the report's diagnosis."""

    @abc.abstractmethod
    def get_diagnosis(self, report_id: str) -> DiagnosisRecord | None: ...

    @abc.abstractmethod
    def stale_diagnoses(self, ruleset_version: str, limit: int) -> list[str]:
        """Report ids of up to `limit` diagnoses made by another rule set."""

    @abc.abstractmethod
    def count_diagnoses(self, ruleset_version: str | None = None) -> int: ...

    @abc.abstractmethod
    def set_warranty(self, warranty: WarrantyRecord) -> None: ...

    @abc.abstractmethod
    def get_warranty(self, device_id: str) -> WarrantyRecord | None: ...

    @abc.abstractmethod
    def add_advisory(self, advisory: AdvisoryRecord) -> bool:
        """Record it; False (and nothing written) when the device has one with that code."""

    @abc.abstractmethod
    def undelivered_advisories(self, device_id: str) -> list[AdvisoryRecord]:
        """The device's advisories it has not confirmed, oldest first."""

    @abc.abstractmethod
    def mark_delivered(self, device_id: str, advisory_ids: Sequence[str], at_us: int) -> int:
        """Mark the device's advisories delivered (the first time counts); rows changed."""

    @abc.abstractmethod
    def list_advisories(self, device_id: str | None, limit: int) -> list[AdvisoryRecord]:
        """Newest raised first."""

    # -- life -------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...
