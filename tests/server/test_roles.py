"""Every role against every RPC: the whole matrix, on a real server.

The table in `probelink.server.auth.roles` says who may call what; this test calls
each method as each kind of caller and checks the status: UNAUTHENTICATED without a
credential, PERMISSION_DENIED for a role the table leaves out, and anything but those
two for a role it lets in. A method added to a service without a row fails here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from probelink.channel import bearer
from probelink.server.auth import roles
from probelink.server.auth.roles import OPEN_METHODS, PERMISSIONS
from probelink.v1 import admin_pb2, gateway_pb2, reports_pb2
from tests.server.ingest.reports import varied_reports
from tests.server.running import Device, RunningServer
from tests.server.streams import connect_status

SERVICES = ("AgentGatewayService", "ReportsService", "AdminService")
_FILES = {
    "AgentGatewayService": gateway_pb2,
    "ReportsService": reports_pb2,
    "AdminService": admin_pb2,
}
METHODS = sorted(
    f"{svc.full_name}/{m.name}"
    for name in SERVICES
    for svc in [_FILES[name].DESCRIPTOR.services_by_name[name]]
    for m in svc.methods
)
CALLERS = ("nobody", roles.DEVICE, roles.CUSTOMER, roles.TECHNICIAN, roles.ENGINEER, roles.ADMIN)
AUTH_CODES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


# Who may call what, written out here (as docs/server.md shows it) rather than read from
# the server's table: a wrong row there must fail this test, not pass it.
_STAFF = {"technician", "engineer", "admin"}
_G, _R, _A = (
    "probelink.v1.AgentGatewayService/",
    "probelink.v1.ReportsService/",
    "probelink.v1.AdminService/",
)
EXPECTED: dict[str, set[str]] = {
    _G + "Connect": {"device"},
    _G + "UploadReport": {"device"},
    _G + "GetDictionary": {"device"} | _STAFF,
    _R + "ListReports": {"device", "customer"} | _STAFF,
    _R + "GetReport": {"device", "customer"} | _STAFF,
    _R + "GetDiagnosis": {"device", "customer"} | _STAFF,
    _R + "ListAdvisories": {"device", "customer"} | _STAFF,
    _R + "RecomputeDiagnoses": _STAFF,
    _A + "ListDevices": _STAFF,
    _A + "SetDeviceWarranty": _STAFF,
    **{
        _A + name: {"admin"}
        for name in (
            "CreateToken",
            "RevokeToken",
            "ListTokens",
            "CreateEnrollSecret",
            "RevokeEnrollSecret",
            "ListEnrollSecrets",
            "RevokeDevice",
            "TrainDictionary",
        )
    },
}


def test_every_method_has_a_row_in_the_table() -> None:
    assert sorted(set(PERMISSIONS) | OPEN_METHODS) == METHODS
    assert {_G + "Enroll"} == OPEN_METHODS
    assert {m: set(r) for m, r in PERMISSIONS.items()} == EXPECTED


@dataclasses.dataclass
class World:
    server: RunningServer
    credentials: dict[str, str]
    own: Device
    other: Device
    own_report: str
    other_report: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("roles")
    with RunningServer(data) as server:
        own = server.enroll("Own")
        other = server.enroll("Other")
        own_report, other_report = varied_reports(2, seed=11)
        own.upload(own_report)
        other.upload(other_report)
        credentials = {
            roles.DEVICE: own.credential,
            roles.CUSTOMER: server.token(admin_pb2.ROLE_CUSTOMER, own.device_id),
            roles.TECHNICIAN: server.token(admin_pb2.ROLE_TECHNICIAN),
            roles.ENGINEER: server.token(admin_pb2.ROLE_ENGINEER),
            roles.ADMIN: server.admin_token,
        }
        yield World(server, credentials, own, other, own_report.report_id, other_report.report_id)


def _request(method: str, world: World) -> Message:
    """A well-formed request for `method` (what it asks for may or may not exist)."""
    name = method.split("/")[1]
    desc = descriptor_pool.Default().FindMethodByName(method.replace("/", "."))
    cls = message_factory.GetMessageClass(desc.input_type)
    fields: dict[str, object] = {
        "GetReport": {"report_id": world.own_report},
        "GetDiagnosis": {"report_id": world.own_report},
        "CreateToken": {"role": admin_pb2.ROLE_TECHNICIAN, "label": "matrix"},
        "RevokeToken": {"token_id": "tok_000000000000"},
        "RevokeEnrollSecret": {"secret_id": "sec_000000000000"},
        "RevokeDevice": {"device_id": "00000000-0000-4000-8000-000000000000"},
        "Enroll": {"enroll_secret": "ple_" + "0" * 43},
    }.get(name, {})  # type: ignore[assignment]
    return cls(**fields)


def _call(
    server: RunningServer, method: str, request: Message, credential: str | None
) -> grpc.StatusCode:
    channel = server.channel()
    fn: grpc.UnaryUnaryMultiCallable[Message, bytes] = channel.unary_unary(
        "/" + method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=lambda b: b,
    )
    try:
        fn(request, metadata=bearer(credential) if credential else None, timeout=30)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("caller", CALLERS)
def test_matrix(world: World, method: str, caller: str) -> None:
    server = world.server
    credentials = world.credentials
    credential = None if caller == "nobody" else credentials[caller]
    if method.endswith("/Connect"):
        code = connect_status(server.address, credential)
    else:
        code = _call(server, method, _request(method, world), credential)
    if method in OPEN_METHODS:
        # Open to all; the enroll secret (a made-up one here) is what is checked.
        assert code == grpc.StatusCode.UNAUTHENTICATED
        return
    if caller == "nobody":
        assert code == grpc.StatusCode.UNAUTHENTICATED
    elif caller in EXPECTED[method]:
        assert code not in AUTH_CODES, f"{caller} should be let into {method}, got {code}"
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED


def test_a_device_reads_only_its_own_reports(world: World) -> None:
    server = world.server
    own, other = world.own, world.other
    stub = server.reports()
    cred = world.credentials[roles.DEVICE]
    listed = stub.ListReports(reports_pb2.ListReportsRequest(), metadata=bearer(cred))
    assert {r.device_id for r in listed.reports} == {own.device_id}
    for request in (reports_pb2.ListReportsRequest(device_id=other.device_id),):
        with pytest.raises(grpc.RpcError) as excinfo:
            stub.ListReports(request, metadata=bearer(cred))
        assert excinfo.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as excinfo:
        stub.GetReport(
            reports_pb2.GetReportRequest(report_id=world.other_report),
            metadata=bearer(cred),
        )
    assert excinfo.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "another device" in (excinfo.value.details() or "")


def test_a_customer_token_reads_only_its_device(world: World) -> None:
    server = world.server
    own = world.own
    cred = world.credentials[roles.CUSTOMER]
    stub = server.reports()
    listed = stub.ListReports(reports_pb2.ListReportsRequest(), metadata=bearer(cred))
    assert {r.device_id for r in listed.reports} == {own.device_id}
    with pytest.raises(grpc.RpcError) as excinfo:
        stub.GetReport(
            reports_pb2.GetReportRequest(report_id=world.other_report),
            metadata=bearer(cred),
        )
    assert excinfo.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_diagnoses_are_scoped_like_reports(world: World) -> None:
    stub = world.server.reports()
    own_report = reports_pb2.GetDiagnosisRequest(report_id=world.own_report)
    for role in (roles.DEVICE, roles.CUSTOMER):
        cred = world.credentials[role]
        made = stub.GetDiagnosis(own_report, metadata=bearer(cred))
        assert json.loads(made.diagnosis_json)["report_id"] == world.own_report
        for request, words in (
            (reports_pb2.GetDiagnosisRequest(report_id=world.other_report), "another device"),
            (
                reports_pb2.GetDiagnosisRequest(report_id=world.own_report, recompute=True),
                "technicians",
            ),
        ):
            with pytest.raises(grpc.RpcError) as excinfo:
                stub.GetDiagnosis(request, metadata=bearer(cred))
            assert excinfo.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert words in (excinfo.value.details() or "")
        with pytest.raises(grpc.RpcError) as excinfo:
            stub.ListAdvisories(
                reports_pb2.ListAdvisoriesRequest(device_id=world.other.device_id),
                metadata=bearer(cred),
            )
        assert excinfo.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_staff_read_every_device(world: World) -> None:
    server = world.server
    for role in (roles.TECHNICIAN, roles.ENGINEER, roles.ADMIN):
        cred = world.credentials[role]
        listed = server.reports().ListReports(
            reports_pb2.ListReportsRequest(), metadata=bearer(cred)
        )
        assert len(listed.reports) == 2


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ((), "no credential"),
        ((("authorization", "Basic abc"),), "Bearer"),
        ((("authorization", "Bearer not-ours"),), "not a Probelink credential"),
        ((("authorization", "Bearer plt_" + "x" * 43),), "not known"),
    ],
)
def test_unauthenticated_messages_say_what_to_do(
    world: World, metadata: tuple[tuple[str, str], ...], words: str
) -> None:
    server = world.server
    with pytest.raises(grpc.RpcError) as excinfo:
        server.reports().ListReports(reports_pb2.ListReportsRequest(), metadata=metadata)
    assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert words in (excinfo.value.details() or "")


def test_a_revoked_token_is_refused_with_a_reason(world: World) -> None:
    server = world.server
    admin = server.admin()
    created = admin.CreateToken(
        admin_pb2.CreateTokenRequest(role=admin_pb2.ROLE_ENGINEER, label="leaving"),
        metadata=bearer(server.admin_token),
    )
    server.reports().ListReports(reports_pb2.ListReportsRequest(), metadata=bearer(created.token))
    admin.RevokeToken(
        admin_pb2.RevokeTokenRequest(token_id=created.info.token_id),
        metadata=bearer(server.admin_token),
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        server.reports().ListReports(
            reports_pb2.ListReportsRequest(), metadata=bearer(created.token)
        )
    assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (excinfo.value.details() or "")
    listed = admin.ListTokens(admin_pb2.ListTokensRequest(), metadata=bearer(server.admin_token))
    revoked = [t for t in listed.tokens if t.token_id == created.info.token_id]
    assert revoked[0].HasField("revoked_at")


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (admin_pb2.CreateTokenRequest(), "role"),
        (admin_pb2.CreateTokenRequest(role=admin_pb2.ROLE_DEVICE), "enrolling"),
        (admin_pb2.CreateTokenRequest(role=admin_pb2.ROLE_CUSTOMER), "device id"),
        (
            admin_pb2.CreateTokenRequest(role=admin_pb2.ROLE_TECHNICIAN, device_id="x"),
            "only a customer token",
        ),
        (admin_pb2.CreateTokenRequest(role=admin_pb2.ROLE_ENGINEER, label="x" * 300), "label"),
    ],
)
def test_bad_token_requests_are_invalid_argument(
    world: World, request_: admin_pb2.CreateTokenRequest, words: str
) -> None:
    server = world.server
    with pytest.raises(grpc.RpcError) as excinfo:
        server.admin().CreateToken(request_, metadata=bearer(server.admin_token))
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (excinfo.value.details() or "")
