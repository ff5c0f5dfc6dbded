"""The diagnoses a running server keeps, and the advisories they raise.

A diagnosis is made when someone asks for it (GetDiagnosis) and, for the newest report of
each device, soon after it arrives; it is stored with the version of the rules that made
it. When a diagnosis finds a trend that will cross its limit within the horizon, or a rule
of severity "advisory" fires, an advisory is recorded for the device (once per subject,
ever) and pushed down the device's open Connect stream::

    diagnoses = Diagnoses(astore, book, Diagnoser.load(), hub, horizon_days=90)
    diagnoses.start()
    made = await diagnoses.get(report_id)           # stored, or made now and stored
    diagnoses.stored(device_id, report_id)          # from ingest: diagnose it soon
    await diagnoses.close()

The CPU work (decoding history, CEL, fits) runs on one thread of its own, so it neither
holds the event loop nor competes with the store's threads for more than one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from probelink.server.clock import now_us
from probelink.server.diagnosis.engine import (
    NO_PURCHASE,
    Diagnoser,
    Document,
    PurchaseFacts,
    check_purchase,
    region_today,
)
from probelink.server.diagnosis.warranty import WarrantyError
from probelink.server.errors import InvalidArgument, NotFound, PermissionDenied
from probelink.server.gateway.convert import advisory_message
from probelink.server.gateway.hub import Hub
from probelink.server.ingest.dictionaries import DictionaryBook
from probelink.server.store.async_store import AsyncStore
from probelink.server.store.base import (
    AdvisoryRecord,
    DiagnosisRecord,
    StoredReport,
    WarrantyRecord,
)
from probelink.v1 import gateway_pb2, report_pb2

logger = logging.getLogger(__name__)

# Earlier reports a trend is fitted on: enough for a year of weekly reports.
HISTORY_LIMIT: Final = 60
# A trend crossing within this many days raises an advisory.
DEFAULT_HORIZON_DAYS: Final = 90.0
# After-ingest diagnoses run at most this often per round, so a burst of reports costs one
# diagnosis per device, not one per report.
ROUND_PAUSE_S: Final = 1.0
# Decoded reports kept for the next diagnosis of the same device (history repeats).
_DECODED_CACHE: Final = 512

# The action a trend's advisory recommends, by metric.
_TREND_ACTION: Final = {
    "battery.health_pct": "battery_replacement",
    "storage.nvme_percentage_used_pct": "storage_replacement",
    "storage.ata_reallocated_sectors": "storage_replacement",
}


@dataclass(frozen=True)
class Made:
    """A diagnosis and whether it was made for this request."""

    record: DiagnosisRecord
    made_now: bool


@dataclass(frozen=True)
class Candidate:
    """An advisory a diagnosis calls for, before it is recorded."""

    kind: str
    code: str
    severity: str
    text: dict[str, str]
    action: str


def advisories_in(document: Document, horizon_days: float) -> list[Candidate]:
    """The advisories `document` calls for: trends on a calendar axis crossing within
    `horizon_days` (by the central estimate), and findings of severity "advisory"."""
    out = []
    for trend in document["trends"]:
        projection = trend["projection"]
        if projection is None or trend["x_unit"] != "days":
            continue
        if projection["remaining"] > horizon_days:
            continue
        out.append(
            Candidate(
                kind="trend",
                code=f"{trend['metric']}:{trend['subject']}",
                severity="advisory",
                text={
                    "en": f"Service reminder: {trend['text']['en']}.",
                    "zh-CN": f"服务提醒：{trend['text']['zh-CN']}。",
                },
                action=_TREND_ACTION.get(trend["metric"], ""),
            )
        )
    for finding in document["findings"]:
        if finding["severity"] == "advisory":
            out.append(
                Candidate(
                    kind="finding",
                    code=finding["rule_id"],
                    severity="advisory",
                    text=dict(finding["text"]),
                    action=finding["action"],
                )
            )
    return out


def _check_may_read(may_read: Callable[[str], bool] | None, device_id: str, report_id: str) -> None:
    if may_read is not None and not may_read(device_id):
        raise PermissionDenied(
            f"report {report_id} belongs to another device; its diagnosis is not yours"
        )


def purchase_of(record: WarrantyRecord | None) -> PurchaseFacts:
    if record is None:
        return NO_PURCHASE
    return PurchaseFacts(
        date.fromisoformat(record.purchase_date),
        record.region,
        record.plans,
        record.exclusions,
        "device",
    )


def parse_purchase(
    purchase_date: str,
    region: str,
    plans: Sequence[str],
    exclusions: Sequence[str],
    diagnoser: Diagnoser,
    source: str,
) -> PurchaseFacts:
    """Purchase facts from a request, checked; InvalidArgument in words a person can use."""
    day: date | None = None
    if purchase_date:
        try:
            day = date.fromisoformat(purchase_date)
        except ValueError:
            raise InvalidArgument(
                f"purchase date {purchase_date!r} is not a date; write it as YYYY-MM-DD"
            ) from None
    facts = PurchaseFacts(
        day,
        region or None,
        tuple(sorted(set(plans))),
        tuple(sorted(set(exclusions))),
        "request" if source == "request" else "device",
    )
    book = diagnoser.warranty
    check_purchase(facts, book, region_today(book, facts.region, datetime.now(UTC)))
    return facts


class Diagnoses:
    def __init__(
        self,
        store: AsyncStore,
        book: DictionaryBook,
        diagnoser: Diagnoser,
        hub: Hub,
        *,
        horizon_days: float = DEFAULT_HORIZON_DAYS,
        history_limit: int = HISTORY_LIMIT,
        round_pause_s: float = ROUND_PAUSE_S,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.store = store
        self.book = book
        self.diagnoser = diagnoser
        self.hub = hub
        self.horizon_days = horizon_days
        self.history_limit = history_limit
        self.round_pause_s = round_pause_s
        self._clock = clock
        self._cpu = ThreadPoolExecutor(1, thread_name_prefix="diagnosis")
        self._decoded: OrderedDict[str, report_pb2.Report] = OrderedDict()
        self._pending: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def version(self) -> str:
        return self.diagnoser.version

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="diagnoses after ingest")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._cpu.shutdown, True)

    def stored(self, device_id: str, report_id: str) -> None:
        """A new report was stored: diagnose the device's newest soon (ingest calls this)."""
        self._pending[device_id] = report_id
        self._wake.set()

    async def get(
        self,
        report_id: str,
        *,
        recompute: bool = False,
        purchase: PurchaseFacts | None = None,
        may_read: Callable[[str], bool] | None = None,
        advise: bool = True,
    ) -> Made:
        """The report's stored diagnosis, or one made now (stored unless `purchase` is
        given: a what-if is not the device's diagnosis). NotFound, PermissionDenied.

        A diagnosis made now raises advisories only when `advise` and the report is the
        device's newest: a reminder from an old report may be about a part since replaced.
        """
        if not recompute and purchase is None:
            # The common case: the stored one, without reading the report's frame.
            kept = await self.store.read(self.store.store.get_diagnosis, report_id)
            if kept is not None:
                _check_may_read(may_read, kept.device_id, report_id)
                return Made(kept, made_now=False)
        stored = await self.store.read(self.store.store.get_report, report_id)
        if stored is None:
            raise NotFound(f"no report {report_id} on this server")
        device_id = stored.row.device_id
        _check_may_read(may_read, device_id, report_id)
        if purchase is None:
            record = await self.store.read(self.store.store.get_warranty, device_id)
            facts = self._recorded(record)
        else:
            facts = purchase
        history = await self.store.read(
            self.store.store.device_history,
            device_id,
            stored.row.summary.started_at_us,
            self.history_limit + 1,
        )
        loop = asyncio.get_running_loop()
        at_us = self._clock()
        document = await loop.run_in_executor(self._cpu, self._make, stored, history, facts, at_us)
        made = DiagnosisRecord(
            report_id,
            device_id,
            self.diagnoser.version,
            at_us,
            json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        )
        if purchase is None:
            await self.store.write(self.store.store.put_diagnosis, made)
            if advise and await self._newest(device_id) == report_id:
                await self._advise(device_id, report_id, document, at_us)
        return Made(made, made_now=True)

    async def refresh(self, device_id: str) -> Made | None:
        """Diagnose the device's newest report again (its warranty facts changed)."""
        newest = await self._newest(device_id)
        return None if newest is None else await self.get(newest, recompute=True)

    async def _newest(self, device_id: str) -> str | None:
        """The id of the device's newest report by its own start time (no frame read)."""
        return await self.store.read(self.store.store.newest_report_id, device_id)

    def _recorded(self, record: WarrantyRecord | None) -> PurchaseFacts:
        """The device's recorded purchase facts, if today's catalogs can still judge them."""
        facts = purchase_of(record)
        try:
            book = self.diagnoser.warranty
            check_purchase(facts, book, region_today(book, facts.region, datetime.now(UTC)))
        except WarrantyError as err:
            # A region or plan taken out of warranty.toml since it was recorded: judge
            # without it rather than fail every diagnosis of the device.
            device = record.device_id if record is not None else "?"
            logger.warning("warranty record of device %s not used: %s", device, err)
            return NO_PURCHASE
        return facts

    async def recompute_stale(self) -> tuple[int, int]:
        """Make again every stored diagnosis another rule set made: (recomputed, current)."""
        done = 0
        failed: set[str] = set()
        while True:
            ids = await self.store.read(
                self.store.store.stale_diagnoses, self.version, len(failed) + 100
            )
            todo = [i for i in ids if i not in failed]
            if not todo:
                break
            for report_id in todo:
                try:
                    # Old reports judged again: no reminders from them (see `get`).
                    await self.get(report_id, recompute=True, advise=False)
                    done += 1
                except Exception:
                    logger.exception("could not diagnose report %s again", report_id)
                    failed.add(report_id)
        current = await self.store.read(self.store.store.count_diagnoses, self.version)
        return done, current - done

    def _make(
        self,
        stored: StoredReport,
        history: list[StoredReport],
        purchase: PurchaseFacts,
        at_us: int,
    ) -> Document:
        report = self._report(stored)
        earlier = [self._report(h) for h in history if h.row.report_id != stored.row.report_id]
        return self.diagnoser.diagnose(
            report,
            report_id=stored.row.report_id,
            device_id=stored.row.device_id,
            now=datetime.fromtimestamp(at_us / 1e6, UTC),
            history=earlier[-self.history_limit :],
            purchase=purchase,
        )

    def _report(self, stored: StoredReport) -> report_pb2.Report:
        report_id = stored.row.report_id
        found = self._decoded.get(report_id)
        if found is not None:
            self._decoded.move_to_end(report_id)
            return found
        _, report = self.book.read_back(self.store.store, stored)
        self._decoded[report_id] = report
        if len(self._decoded) > _DECODED_CACHE:
            self._decoded.popitem(last=False)
        return report

    async def _advise(self, device_id: str, report_id: str, document: Document, at_us: int) -> None:
        for candidate in advisories_in(document, self.horizon_days):
            record = AdvisoryRecord(
                advisory_id="adv_" + secrets.token_hex(10),
                device_id=device_id,
                kind=candidate.kind,
                code=candidate.code,
                severity=candidate.severity,
                text=candidate.text,
                action=candidate.action,
                report_id=report_id,
                raised_at_us=at_us,
            )
            if await self.store.write(self.store.store.add_advisory, record):
                logger.info(
                    "advisory %s for device %s: %s", record.advisory_id, device_id, record.code
                )
                self.hub.send(
                    device_id, gateway_pb2.ConnectResponse(advisory=advisory_message(record))
                )

    async def undelivered(self, device_id: str) -> list[gateway_pb2.ConnectResponse]:
        records = await self.store.read(self.store.store.undelivered_advisories, device_id)
        return [gateway_pb2.ConnectResponse(advisory=advisory_message(r)) for r in records]

    async def delivered(self, device_id: str, advisory_ids: Sequence[str]) -> None:
        ids = [i for i in advisory_ids if i][:1000]
        await self.store.write(self.store.store.mark_delivered, device_id, ids, self._clock())

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            for device_id, report_id in batch.items():
                try:
                    await self.get(report_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # One report that cannot be diagnosed must not stop the others'.
                    logger.exception(
                        "could not diagnose report %s of device %s", report_id, device_id
                    )
            await asyncio.sleep(self.round_pause_s)
