"""The one table of who may call what.

Every RPC the server offers has a row here, and a test walks every role against every
row (and fails when a service gains a method that has no row). Reading is further
scoped inside the call: a device reads only its own reports, a customer token only the
device it was issued for.

    allowed("probelink.v1.AdminService/CreateToken")  ->  frozenset({"admin"})
"""

from __future__ import annotations

from probelink.server.errors import PermissionDenied

DEVICE = "device"
CUSTOMER = "customer"
TECHNICIAN = "technician"
ENGINEER = "engineer"
ADMIN = "admin"

#: The roles a person's API token can have (devices get theirs by enrolling).
PERSON_ROLES = (CUSTOMER, TECHNICIAN, ENGINEER, ADMIN)
STAFF = frozenset({TECHNICIAN, ENGINEER, ADMIN})

_GATEWAY = "probelink.v1.AgentGatewayService/"
_REPORTS = "probelink.v1.ReportsService/"
_ADMIN = "probelink.v1.AdminService/"

#: Methods that need no credential: Enroll is authorised by its enroll secret.
OPEN_METHODS = frozenset({_GATEWAY + "Enroll"})

PERMISSIONS: dict[str, frozenset[str]] = {
    _GATEWAY + "Connect": frozenset({DEVICE}),
    _GATEWAY + "UploadReport": frozenset({DEVICE}),
    _GATEWAY + "GetDictionary": frozenset({DEVICE}) | STAFF,
    _REPORTS + "ListReports": frozenset({DEVICE, CUSTOMER}) | STAFF,
    _REPORTS + "GetReport": frozenset({DEVICE, CUSTOMER}) | STAFF,
    # Recompute and what-if warranty inside GetDiagnosis are checked in the call (staff).
    _REPORTS + "GetDiagnosis": frozenset({DEVICE, CUSTOMER}) | STAFF,
    _REPORTS + "RecomputeDiagnoses": STAFF,
    _REPORTS + "ListAdvisories": frozenset({DEVICE, CUSTOMER}) | STAFF,
    _ADMIN + "CreateToken": frozenset({ADMIN}),
    _ADMIN + "RevokeToken": frozenset({ADMIN}),
    _ADMIN + "ListTokens": frozenset({ADMIN}),
    _ADMIN + "CreateEnrollSecret": frozenset({ADMIN}),
    _ADMIN + "RevokeEnrollSecret": frozenset({ADMIN}),
    _ADMIN + "ListEnrollSecrets": frozenset({ADMIN}),
    _ADMIN + "ListDevices": STAFF,
    _ADMIN + "RevokeDevice": frozenset({ADMIN}),
    _ADMIN + "TrainDictionary": frozenset({ADMIN}),
    _ADMIN + "SetDeviceWarranty": STAFF,
}


def allowed(method: str) -> frozenset[str]:
    """The roles that may call `method` (its full name, `package.Service/Method`)."""
    return PERMISSIONS.get(method, frozenset())


def check(role: str, method: str) -> None:
    """Raise PermissionDenied, in words a person can act on, unless `role` may call it."""
    roles = allowed(method)
    if role in roles:
        return
    short = method.removeprefix("probelink.v1.")
    if not roles:
        raise PermissionDenied(f"{short} is not open to any caller")
    if roles == {DEVICE}:
        raise PermissionDenied(
            f"{short} is for enrolled devices; a {role} token cannot call it "
            "(the agent enrolls with an enroll secret to get a device credential)"
        )
    names = ", ".join(r for r in (DEVICE, *PERSON_ROLES) if r in roles)
    raise PermissionDenied(f"a {role} cannot call {short}; it needs one of: {names}")
