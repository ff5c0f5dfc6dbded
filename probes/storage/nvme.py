"""storage.nvme_sysfs: NVMe controllers from `class/nvme`, one result per controller.

    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/desktop-no-battery/sys"))
    >>> [(r.subject, r.status) for r in nvme_sysfs(ctx)]
    [('nvme0', 1), ('nvme1', 2)]                  # nvme1 is "dead": WARN

Identity (model, serial, firmware) and the controller's state, with no tool needed:
sysfs has no health log, so this probe cannot say a drive is worn (storage.smart does).
A controller that is not "live" is a finding: the kernel gave up on it or is resetting it.
"""

from __future__ import annotations

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unsupported
from probelink.probes.readers.class_nvme import NvmeController, read_nvme_controllers
from probelink.probes.readers.problems import first_error
from probelink.probes.registry import STORAGE, telemetry
from probelink.probes.results import PASS, WARN, check, errored, fact, result, worst
from probelink.v1 import probe_pb2, storage_pb2

# What each non-live state means for the person at the device.
_STATE_WORDS = {
    "dead": "the kernel gave up on the controller after errors "
    "(a failing drive, or a power-saving quirk of its firmware)",
    "resetting": "the controller is being reset after an error",
    "connecting": "the controller is (re)connecting",
    "deleting": "the controller is being removed",
    "deleting (no IO)": "the controller is being removed",
    "new": "the controller has not finished starting",
}


@telemetry("storage.nvme_sysfs", STORAGE, "NVMe controllers: identity and state (sysfs)")
def nvme_sysfs(ctx: ProbeContext) -> list[probe_pb2.ProbeResult]:
    controllers = read_nvme_controllers(ctx.sysfs)
    if not controllers:
        raise Unsupported("no NVMe controllers (sysfs class/nvme is empty or absent)")
    return [_judge(c) for c in controllers]


def to_proto(c: NvmeController) -> storage_pb2.StorageDevice:
    msg = storage_pb2.StorageDevice(
        name=c.name,
        source=storage_pb2.STORAGE_SOURCE_NVME_SYSFS,
        protocol=storage_pb2.STORAGE_PROTOCOL_NVME,
        model=c.model or "",
        serial_number=c.serial or "",
        firmware_version=c.firmware_rev or "",
    )
    if c.capacity_bytes is not None:
        msg.capacity_bytes = c.capacity_bytes
    return msg


def _judge(c: NvmeController) -> probe_pb2.ProbeResult:
    device = to_proto(c)
    if c.state is None and c.errors:
        # Without its state the controller cannot be judged; say which read failed.
        return errored(
            first_error(c.errors),
            subject=c.name,
            storage_device=device,
        )
    checks = []
    if c.state is not None and c.state != "live":
        meaning = _STATE_WORDS.get(c.state, "the controller is not usable")
        checks.append(
            check(
                "storage.nvme_not_live",
                WARN,
                f"controller state is {c.state!r}, not 'live': {meaning}",
            )
        )
    facts = [
        fact(k, v)
        for k, v in (("state", c.state), ("transport", c.transport), ("address", c.address))
        if v
    ]
    facts += [fact("unreadable_attribute", f"{e.source}: {e.message}") for e in c.errors]
    facts += [fact("namespace", ns.name) for ns in c.namespaces]
    status = worst(checks, PASS)
    name = f"{c.name} ({c.model})" if c.model else c.name
    parts = [f"state {c.state or 'not reported'}"]
    if c.transport:
        parts.append(c.transport)
    if c.firmware_rev:
        parts.append(f"firmware {c.firmware_rev}")
    evidence = f"{name}: " + ", ".join(parts)
    return result(
        status, evidence, subject=c.name, checks=checks, facts=facts, storage_device=device
    )
