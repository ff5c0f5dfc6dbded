"""ReportsService: stored reports, read back by those allowed to read them.

Staff read every device's reports; a device only its own; a customer token only the
device it was issued for. Reports are served from the stored zstd frame, decompressed
with the dictionary it was sent with (the server keeps every dictionary it issued),
together with the exact serialized bytes, the device's signature of them and its
registered public key: whoever reads a report can check it again themselves
(`probelink-server reports show ID --verify`) without trusting this server's verdict.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import grpc

from probelink.server.auth import roles
from probelink.server.auth.authenticator import Caller
from probelink.server.diagnosis.service import Diagnoses, parse_purchase
from probelink.server.errors import InvalidArgument, NotFound, PermissionDenied
from probelink.server.gateway.calls import Guard, rpc
from probelink.server.gateway.convert import advisory_record, report_summary
from probelink.server.ingest.dictionaries import DictionaryBook
from probelink.server.store.async_store import AsyncStore
from probelink.v1 import reports_pb2, reports_pb2_grpc

_SERVICE = "probelink.v1.ReportsService/"
DEFAULT_PAGE = 50
MAX_PAGE = 1000


class Reports(reports_pb2_grpc.ReportsServiceServicer):
    def __init__(
        self, store: AsyncStore, guard: Guard, book: DictionaryBook, diagnoses: Diagnoses
    ) -> None:
        self.diagnoses = diagnoses
        self.store = store
        self.guard = guard
        self.book = book

    @rpc(_SERVICE + "ListReports")
    async def ListReports(
        self,
        request: reports_pb2.ListReportsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> reports_pb2.ListReportsResponse:
        device_id = request.device_id or None
        scope = caller.scope
        if scope is not None:
            if device_id is not None and device_id != scope:
                raise PermissionDenied(f"a {caller.role} reads only the reports of device {scope}")
            device_id = scope
        if request.page_size > MAX_PAGE:
            raise InvalidArgument(f"page_size may be at most {MAX_PAGE}")
        limit = request.page_size or DEFAULT_PAGE
        after = _decode_token(request.page_token) if request.page_token else None
        rows = await self.store.read(self.store.store.list_reports, device_id, limit + 1, after)
        response = reports_pb2.ListReportsResponse(
            reports=[report_summary(r) for r in rows[:limit]]
        )
        if len(rows) > limit:
            last = rows[limit - 1]
            response.next_page_token = _encode_token(last.received_at_us, last.report_id)
        return response

    @rpc(_SERVICE + "GetReport")
    async def GetReport(
        self,
        request: reports_pb2.GetReportRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> reports_pb2.GetReportResponse:
        report_id = request.report_id.strip()
        if not report_id:
            raise InvalidArgument("report_id is empty: give the id `reports list` shows")
        stored = await self.store.read(self.store.store.get_report, report_id)
        if stored is None:
            raise NotFound(f"no report {report_id} on this server")
        if not caller.may_read(stored.row.device_id):
            raise PermissionDenied(
                f"report {report_id} belongs to another device; a {caller.role} reads "
                "only its own device's reports"
            )
        serialized, report = await self.store.read(self.book.read_back, self.store.store, stored)
        return reports_pb2.GetReportResponse(
            summary=report_summary(stored.row),
            report=report,
            serialized_report=serialized,
            signature=stored.row.signature.signature,
            device_public_key=stored.device_public_key or b"",
        )

    @rpc(_SERVICE + "GetDiagnosis")
    async def GetDiagnosis(
        self,
        request: reports_pb2.GetDiagnosisRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> reports_pb2.GetDiagnosisResponse:
        report_id = request.report_id.strip()
        if not report_id:
            raise InvalidArgument("report_id is empty: give the id `reports list` shows")
        what_if = request.HasField("warranty")
        if (request.recompute or what_if) and caller.role not in roles.STAFF:
            raise PermissionDenied(
                f"a {caller.role} reads the stored diagnosis; recomputing it or judging "
                "warranty by other facts is for technicians, engineers and admins"
            )
        purchase = None
        if what_if:
            given = request.warranty
            purchase = parse_purchase(
                given.purchase_date,
                given.region,
                given.plans,
                given.exclusions,
                self.diagnoses.diagnoser,
                "request",
            )
        made = await self.diagnoses.get(
            report_id, recompute=request.recompute, purchase=purchase, may_read=caller.may_read
        )
        return reports_pb2.GetDiagnosisResponse(
            diagnosis_json=made.record.document,
            ruleset_version=made.record.ruleset_version,
            current_ruleset_version=self.diagnoses.version,
            made_now=made.made_now,
        )

    @rpc(_SERVICE + "RecomputeDiagnoses")
    async def RecomputeDiagnoses(
        self,
        request: reports_pb2.RecomputeDiagnosesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> reports_pb2.RecomputeDiagnosesResponse:
        recomputed, current = await self.diagnoses.recompute_stale()
        return reports_pb2.RecomputeDiagnosesResponse(
            recomputed=recomputed, current=current, ruleset_version=self.diagnoses.version
        )

    @rpc(_SERVICE + "ListAdvisories")
    async def ListAdvisories(
        self,
        request: reports_pb2.ListAdvisoriesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> reports_pb2.ListAdvisoriesResponse:
        device_id = request.device_id.strip() or None
        scope = caller.scope
        if scope is not None:
            if device_id is not None and device_id != scope:
                raise PermissionDenied(f"a {caller.role} reads only the advisories of {scope}")
            device_id = scope
        records = await self.store.read(self.store.store.list_advisories, device_id, MAX_PAGE)
        return reports_pb2.ListAdvisoriesResponse(advisories=[advisory_record(r) for r in records])


def _encode_token(received_at_us: int, report_id: str) -> str:
    return base64.urlsafe_b64encode(f"{received_at_us}:{report_id}".encode()).decode()


def _decode_token(token: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        us, _, report_id = text.partition(":")
        if not report_id:
            raise ValueError(text)
        return int(us), report_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(
            "page_token is not one this server issued: pass next_page_token as it was returned"
        ) from None
