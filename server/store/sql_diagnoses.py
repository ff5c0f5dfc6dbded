"""The SQL of diagnoses, devices' warranty facts and advisories, shared by both backends.

A mixin of `SqlStore` (it uses the same `_run` transaction seam), kept apart so the report
path in sql.py stays readable::

    store.put_diagnosis(DiagnosisRecord(report_id, device_id, version, now_us, json_text))
    store.add_advisory(record)          # False when the device already has that code
    store.mark_delivered(device_id, ["adv_1"], now_us)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from probelink.server.store.base import AdvisoryRecord, DiagnosisRecord, WarrantyRecord

Row = tuple[Any, ...]

_DIAGNOSIS_COLUMNS = "report_id, device_id, ruleset_version, made_at_us, document"
_WARRANTY_COLUMNS = "device_id, purchase_date, region, plans, exclusions, updated_at_us"
_ADVISORY_COLUMNS = (
    "advisory_id, device_id, kind, code, severity, text, action, report_id, raised_at_us, "
    "delivered_at_us"
)


class DiagnosisTables:
    """Store methods over the `diagnoses`, `device_warranty` and `advisories` tables."""

    _run: Callable[..., Any]

    def put_diagnosis(self, diagnosis: DiagnosisRecord) -> None:
        sql = (
            f"INSERT INTO diagnoses ({_DIAGNOSIS_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (report_id) DO UPDATE SET ruleset_version = excluded.ruleset_version, "
            "made_at_us = excluded.made_at_us, document = excluded.document"
        )
        self._run(lambda tx: tx.run(sql, dataclasses.astuple(diagnosis)), write=True)

    def get_diagnosis(self, report_id: str) -> DiagnosisRecord | None:
        sql = f"SELECT {_DIAGNOSIS_COLUMNS} FROM diagnoses WHERE report_id = ?"
        rows = self._run(lambda tx: tx.query(sql, (report_id,)), write=False)
        return DiagnosisRecord(*rows[0]) if rows else None

    def stale_diagnoses(self, ruleset_version: str, limit: int) -> list[str]:
        sql = (
            "SELECT report_id FROM diagnoses WHERE ruleset_version <> ? ORDER BY report_id LIMIT ?"
        )
        rows = self._run(lambda tx: tx.query(sql, (ruleset_version, limit)), write=False)
        return [str(r[0]) for r in rows]

    def count_diagnoses(self, ruleset_version: str | None = None) -> int:
        params: tuple[object, ...] = ()
        if ruleset_version is None:
            sql = "SELECT COUNT(*) FROM diagnoses"
        else:
            sql, params = (
                "SELECT COUNT(*) FROM diagnoses WHERE ruleset_version = ?",
                (ruleset_version,),
            )
        rows = self._run(lambda tx: tx.query(sql, params), write=False)
        return int(rows[0][0])

    def set_warranty(self, warranty: WarrantyRecord) -> None:
        sql = (
            f"INSERT INTO device_warranty ({_WARRANTY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET purchase_date = excluded.purchase_date, "
            "region = excluded.region, plans = excluded.plans, "
            "exclusions = excluded.exclusions, updated_at_us = excluded.updated_at_us"
        )
        values = (
            warranty.device_id,
            warranty.purchase_date,
            warranty.region,
            json.dumps(list(warranty.plans)),
            json.dumps(list(warranty.exclusions)),
            warranty.updated_at_us,
        )
        self._run(lambda tx: tx.run(sql, values), write=True)

    def get_warranty(self, device_id: str) -> WarrantyRecord | None:
        sql = f"SELECT {_WARRANTY_COLUMNS} FROM device_warranty WHERE device_id = ?"
        rows = self._run(lambda tx: tx.query(sql, (device_id,)), write=False)
        if not rows:
            return None
        device, purchased, region, plans, exclusions, updated = rows[0]
        return WarrantyRecord(
            device,
            purchased,
            region,
            tuple(json.loads(plans)),
            tuple(json.loads(exclusions)),
            int(updated),
        )

    def add_advisory(self, advisory: AdvisoryRecord) -> bool:
        sql = (
            f"INSERT INTO advisories ({_ADVISORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING"
        )
        values = dataclasses.astuple(advisory)
        values = (*values[:5], json.dumps(advisory.text, ensure_ascii=False), *values[6:])
        return bool(self._run(lambda tx: tx.run(sql, values), write=True))

    def undelivered_advisories(self, device_id: str) -> list[AdvisoryRecord]:
        sql = (
            f"SELECT {_ADVISORY_COLUMNS} FROM advisories "
            "WHERE device_id = ? AND delivered_at_us IS NULL ORDER BY raised_at_us, advisory_id"
        )
        rows = self._run(lambda tx: tx.query(sql, (device_id,)), write=False)
        return [_advisory(r) for r in rows]

    def mark_delivered(self, device_id: str, advisory_ids: Sequence[str], at_us: int) -> int:
        if not advisory_ids:
            return 0
        marks = ", ".join("?" for _ in advisory_ids)
        sql = (
            "UPDATE advisories SET delivered_at_us = ? WHERE device_id = ? "
            f"AND delivered_at_us IS NULL AND advisory_id IN ({marks})"
        )
        params = (at_us, device_id, *advisory_ids)
        return int(self._run(lambda tx: tx.run(sql, params), write=True))

    def list_advisories(self, device_id: str | None, limit: int) -> list[AdvisoryRecord]:
        where, params = (
            ("WHERE device_id = ? ", (device_id, limit)) if device_id else ("", (limit,))
        )
        sql = (
            f"SELECT {_ADVISORY_COLUMNS} FROM advisories {where}"
            "ORDER BY raised_at_us DESC, advisory_id DESC LIMIT ?"
        )
        rows = self._run(lambda tx: tx.query(sql, params), write=False)
        return [_advisory(r) for r in rows]


def _advisory(row: Row) -> AdvisoryRecord:
    advisory_id, device_id, kind, code, severity, text, action, report_id, raised, delivered = row
    return AdvisoryRecord(
        advisory_id,
        device_id,
        kind,
        code,
        severity,
        json.loads(text),
        action,
        report_id,
        int(raised),
        None if delivered is None else int(delivered),
    )
