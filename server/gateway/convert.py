"""Store records to contract messages, and back where a request names a record.

One home for these mappings, so every service shows a token, a device or a report
summary the same way.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from probelink.server import clock
from probelink.server.auth import roles
from probelink.server.errors import InvalidArgument
from probelink.server.store.base import (
    AdvisoryRecord,
    DeviceRecord,
    DictionaryRecord,
    EnrollSecretRecord,
    ReportRow,
    TokenRecord,
)
from probelink.v1 import admin_pb2, advisory_pb2, reports_pb2, wire_pb2

_ROLE_VALUES: dict[str, admin_pb2.Role.ValueType] = {
    roles.DEVICE: admin_pb2.ROLE_DEVICE,
    roles.CUSTOMER: admin_pb2.ROLE_CUSTOMER,
    roles.TECHNICIAN: admin_pb2.ROLE_TECHNICIAN,
    roles.ENGINEER: admin_pb2.ROLE_ENGINEER,
    roles.ADMIN: admin_pb2.ROLE_ADMIN,
}


def timestamp(us: int | None) -> Timestamp | None:
    return None if us is None else clock.timestamp(us)


def role_value(role: str) -> admin_pb2.Role.ValueType:
    return _ROLE_VALUES[role]


def role_name(value: int) -> str:
    """The stored role for a Role value; InvalidArgument for anything else."""
    for name, v in _ROLE_VALUES.items():
        if v == value:
            return name
    raise InvalidArgument(
        "role is missing or unknown: choose customer, technician, engineer or admin"
    )


def dictionary_message(record: DictionaryRecord) -> wire_pb2.Dictionary:
    return wire_pb2.Dictionary(
        dictionary_id=record.dictionary_id,
        content=record.content,
        created_at=timestamp(record.created_at_us),
        trained_on_reports=record.trained_on_reports,
    )


def token_info(record: TokenRecord) -> admin_pb2.TokenInfo:
    return admin_pb2.TokenInfo(
        token_id=record.token_id,
        role=role_value(record.role),
        label=record.label,
        device_id=record.device_id or "",
        created_at=timestamp(record.created_at_us),
        revoked_at=timestamp(record.revoked_at_us),
    )


def secret_info(record: EnrollSecretRecord) -> admin_pb2.EnrollSecretInfo:
    return admin_pb2.EnrollSecretInfo(
        secret_id=record.secret_id,
        label=record.label,
        created_at=timestamp(record.created_at_us),
        revoked_at=timestamp(record.revoked_at_us),
    )


def device_info(record: DeviceRecord) -> admin_pb2.DeviceInfo:
    return admin_pb2.DeviceInfo(
        device_id=record.device_id,
        manufacturer=record.manufacturer,
        model=record.model,
        agent_version=record.agent_version,
        enroll_secret_id=record.enroll_secret_id,
        enrolled_at=timestamp(record.enrolled_at_us),
        revoked_at=timestamp(record.revoked_at_us),
    )


def report_summary(row: ReportRow) -> reports_pb2.ReportSummary:
    s = row.summary
    return reports_pb2.ReportSummary(
        report_id=row.report_id,
        device_id=row.device_id,
        manufacturer=s.manufacturer,
        model=s.model,
        kind=s.kind,  # type: ignore[arg-type]
        overall=s.overall,  # type: ignore[arg-type]
        agent_version=s.agent_version,
        started_at=timestamp(s.started_at_us),
        finished_at=timestamp(s.finished_at_us),
        received_at=timestamp(row.received_at_us),
        result_count=s.result_count,
        fail_count=s.fail_count,
        warn_count=s.warn_count,
        error_count=s.error_count,
        report_bytes=row.report_bytes,
        stored_bytes=row.stored_bytes,
        dictionary_id=row.dictionary_id,
        signature=row.signature.verdict,  # type: ignore[arg-type]
        signing_key=row.signature.signing_key,
        spool_evicted=s.spool_evicted,
    )


def advisory_message(record: AdvisoryRecord) -> advisory_pb2.Advisory:
    return advisory_pb2.Advisory(
        advisory_id=record.advisory_id,
        device_id=record.device_id,
        kind=record.kind,
        code=record.code,
        severity=record.severity,
        text=record.text,
        action=record.action,
        report_id=record.report_id,
        raised_at=timestamp(record.raised_at_us),
    )


def advisory_record(record: AdvisoryRecord) -> reports_pb2.AdvisoryRecord:
    return reports_pb2.AdvisoryRecord(
        advisory=advisory_message(record), delivered_at=timestamp(record.delivered_at_us)
    )
