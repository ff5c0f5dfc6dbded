"""The schema, as an ordered list of migrations both SQL backends apply the same way.

A migration is a version, a name and its statements, written once for both dialects;
the few column types that differ are placeholders filled from `DIALECTS`:

    for migration in MIGRATIONS:
        for sql in migration.statements_for("sqlite"):
            ...  # executed in one transaction, then recorded in schema_migrations

Rules, because a database outlives the code that created it:
- Never edit a migration that has shipped; append a new one.
- Each migration runs in its own transaction together with its `schema_migrations` row,
  so a crash leaves the database at the previous version, never half-way.
- A database whose version is newer than `LATEST` was written by a newer probelink:
  refuse it (`refuse_newer`) rather than guess what its tables mean.
"""

from __future__ import annotations

from dataclasses import dataclass

from probelink.server.errors import StoreError

# The column types that differ between the dialects, in one place.
#   id     text keys; PostgreSQL compares them byte-wise ("C") like SQLite does, so
#          paging by (received_at_us, report_id) orders the same on both
#   int64  times in microseconds and byte counts (SQLite's INTEGER is already 64-bit)
#   blob   raw bytes: zstd frames, hashes, dictionaries
DIALECTS: dict[str, dict[str, str]] = {
    "sqlite": {"id": "TEXT", "int64": "INTEGER", "blob": "BLOB"},
    "postgresql": {"id": 'TEXT COLLATE "C"', "int64": "BIGINT", "blob": "BYTEA"},
}

# The bookkeeping table itself is not a migration: it must exist to record the first one.
SCHEMA_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version       INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    applied_at_us {int64} NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    # SQL with {id}, {int64} and {blob} placeholders; no other braces.
    statements: tuple[str, ...]

    def statements_for(self, dialect: str) -> list[str]:
        types = DIALECTS[dialect]
        return [sql.format(**types) for sql in self.statements]


_INITIAL = Migration(
    1,
    "reports, identities, dictionaries",
    (
        # The raw frame is kept beside the summary so a diagnosis can be recomputed
        # when rules change; the summary columns are ReportSummaryFields.
        """
        CREATE TABLE reports (
            report_id       {id} PRIMARY KEY,
            device_id       {id} NOT NULL,
            received_at_us  {int64} NOT NULL,
            dictionary_id   {int64} NOT NULL,
            report_bytes    {int64} NOT NULL,
            stored_bytes    {int64} NOT NULL,
            content_sha256  {blob} NOT NULL,
            frame           {blob} NOT NULL,
            manufacturer    TEXT NOT NULL,
            model           TEXT NOT NULL,
            kind            INTEGER NOT NULL,
            overall         INTEGER NOT NULL,
            agent_version   TEXT NOT NULL,
            started_at_us   {int64} NOT NULL,
            finished_at_us  {int64} NOT NULL,
            result_count    INTEGER NOT NULL,
            fail_count      INTEGER NOT NULL,
            warn_count      INTEGER NOT NULL,
            error_count     INTEGER NOT NULL
        )""",
        # Newest-first paging, for one device and for all.
        "CREATE INDEX reports_by_device ON reports (device_id, received_at_us, report_id)",
        "CREATE INDEX reports_by_time ON reports (received_at_us, report_id)",
        """
        CREATE TABLE tokens (
            token_id       {id} PRIMARY KEY,
            token_hash     {blob} NOT NULL UNIQUE,
            role           TEXT NOT NULL
                           CHECK (role IN ('customer', 'technician', 'engineer', 'admin')),
            label          TEXT NOT NULL,
            device_id      {id},
            created_at_us  {int64} NOT NULL,
            revoked_at_us  {int64}
        )""",
        """
        CREATE TABLE enroll_secrets (
            secret_id      {id} PRIMARY KEY,
            secret_hash    {blob} NOT NULL UNIQUE,
            label          TEXT NOT NULL,
            created_at_us  {int64} NOT NULL,
            revoked_at_us  {int64}
        )""",
        """
        CREATE TABLE devices (
            device_id         {id} PRIMARY KEY,
            credential_hash   {blob} NOT NULL UNIQUE,
            enroll_secret_id  {id} NOT NULL,
            manufacturer      TEXT NOT NULL,
            model             TEXT NOT NULL,
            agent_version     TEXT NOT NULL,
            enrolled_at_us    {int64} NOT NULL,
            revoked_at_us     {int64}
        )""",
        # Ids are chosen by the server (max + 1, raced safely by the primary key), not
        # generated: an agent holding dictionary 3 must always get the same bytes for 3.
        """
        CREATE TABLE dictionaries (
            dictionary_id       {int64} PRIMARY KEY,
            content             {blob} NOT NULL,
            trained_on_reports  {int64} NOT NULL,
            created_at_us       {int64} NOT NULL
        )""",
        # Facts about the database itself, e.g. when it was bootstrapped.
        """
        CREATE TABLE meta (
            key    {id} PRIMARY KEY,
            value  TEXT NOT NULL
        )""",
    ),
)

_SIGNATURES = Migration(
    2,
    "device keys, report signatures, spool evictions",
    (
        # NULL for a device enrolled before keys were kept: its reports are refused
        # (SIGNATURE_MISSING) until it enrolls again.
        "ALTER TABLE devices ADD COLUMN public_key {blob}",
        # NULL signature and key, verdict 0 (SIGNATURE_VERDICT_UNSPECIFIED): stored
        # before the server checked signatures. Every report stored since carries the
        # signature it was verified with, so it can be checked again later.
        "ALTER TABLE reports ADD COLUMN signature {blob}",
        "ALTER TABLE reports ADD COLUMN signing_key TEXT",
        "ALTER TABLE reports ADD COLUMN signature_verdict INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE reports ADD COLUMN spool_evicted {int64} NOT NULL DEFAULT 0",
    ),
)

_DIAGNOSES = Migration(
    3,
    "diagnoses, warranty facts, advisories",
    (
        # One diagnosis per report, replaced when recomputed; the rule-set version says
        # which rules made it, so `diagnose --recompute --all` finds the stale ones.
        """
        CREATE TABLE diagnoses (
            report_id        {id} PRIMARY KEY,
            device_id        {id} NOT NULL,
            ruleset_version  TEXT NOT NULL,
            made_at_us       {int64} NOT NULL,
            document         TEXT NOT NULL
        )""",
        "CREATE INDEX diagnoses_by_version ON diagnoses (ruleset_version, report_id)",
        # History for trends: a device's reports by their own start time.
        "CREATE INDEX reports_by_device_start ON reports (device_id, started_at_us)",
        # plans and exclusions are JSON lists of catalog ids.
        """
        CREATE TABLE device_warranty (
            device_id      {id} PRIMARY KEY,
            purchase_date  TEXT NOT NULL,
            region         TEXT NOT NULL,
            plans          TEXT NOT NULL,
            exclusions     TEXT NOT NULL,
            updated_at_us  {int64} NOT NULL
        )""",
        # UNIQUE (device_id, code): an advisory is raised once per device and subject,
        # however many reports see it again. text is a JSON object by language.
        """
        CREATE TABLE advisories (
            advisory_id      {id} PRIMARY KEY,
            device_id        {id} NOT NULL,
            kind             TEXT NOT NULL,
            code             TEXT NOT NULL,
            severity         TEXT NOT NULL,
            text             TEXT NOT NULL,
            action           TEXT NOT NULL,
            report_id        {id} NOT NULL,
            raised_at_us     {int64} NOT NULL,
            delivered_at_us  {int64},
            UNIQUE (device_id, code)
        )""",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (_INITIAL, _SIGNATURES, _DIAGNOSES)
LATEST: int = MIGRATIONS[-1].version


def refuse_newer(version: int, where: str) -> None:
    """Raise StoreError if the database at `where` is at a version this code does not know."""
    if version > LATEST:
        raise StoreError(
            f"the database {where} is at schema version {version}, but this probelink "
            f"knows versions up to {LATEST}: it was written by a newer probelink. "
            "Upgrade probelink (or point --db at another database); nothing was changed."
        )
