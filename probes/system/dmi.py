"""system.dmi: the machine's DMI/SMBIOS identity: maker, model, board, BIOS version.

    >>> [r] = dmi(ProbeContext.for_machine(MACHINES / "laptop-worn-battery" / "sys"))
    >>> r.dmi.product_name, r.dmi.bios_version, r.dmi.chassis_type
    ('20XW00GMUS', 'N32ET86W (1.62 )', 'Notebook')

Informational, PASS: the BIOS version feeds the firmware catalog's update advice on the
server, the model picks the parts catalog. SKIP where there is no `class/dmi/id`
(phones and ARM boards, which describe themselves with a device tree, and minimal VMs).
Fields that are vendor placeholders or unreadable (the root-only serial) are left empty
and a fact says why, so an empty field is never a mystery. ERROR only when DMI exists
but not a single attribute could be read.
"""

from __future__ import annotations

from collections.abc import Iterable

from probelink.probes.context import ProbeContext
from probelink.probes.errors import AttributeReadError, Unsupported
from probelink.probes.readers.class_dmi import DMI_DIR, DmiRecord, read_dmi
from probelink.probes.readers.problems import ReadProblem
from probelink.probes.registry import SYSTEM, telemetry
from probelink.probes.results import PASS, errored, fact, result
from probelink.v1 import probe_pb2, system_pb2

_NO_DMI = (
    f"no DMI/SMBIOS identity ({DMI_DIR} is absent): phones, ARM boards and some "
    "virtual machines have no SMBIOS tables"
)


def _support(ctx: ProbeContext) -> str | None:
    return None if ctx.sysfs.is_dir(DMI_DIR) else _NO_DMI


def to_proto(rec: DmiRecord) -> system_pb2.DmiInfo:
    """The contract's DmiInfo for a record; absent fields stay empty."""
    return system_pb2.DmiInfo(
        sys_vendor=rec.sys_vendor or "",
        product_name=rec.product_name or "",
        product_version=rec.product_version or "",
        product_serial=rec.product_serial or "",
        board_vendor=rec.board_vendor or "",
        board_name=rec.board_name or "",
        bios_vendor=rec.bios_vendor or "",
        bios_version=rec.bios_version or "",
        bios_date=rec.bios_date or "",
        chassis_type=rec.chassis_type or "",
    )


def _facts(rec: DmiRecord) -> list[probe_pb2.Fact]:
    facts = []
    if rec.chassis_vendor:
        facts.append(fact("chassis_vendor", rec.chassis_vendor))
    if rec.chassis_type_code is not None:
        facts.append(fact("chassis_type_code", str(rec.chassis_type_code)))
    for name, text in sorted(rec.placeholders.items()):
        facts.append(fact(name, f"vendor placeholder {text!r} ignored"))
    for p in sorted(rec.errors, key=_attribute):
        facts.append(fact(_attribute(p), f"not readable: {p.message}"))
    return facts


def _attribute(problem: ReadProblem) -> str:
    """The attribute's name: "class/dmi/id/product_serial" -> "product_serial"."""
    return problem.source.removeprefix(f"{DMI_DIR}/")


def _anything(rec: DmiRecord) -> bool:
    return any(
        v is not None
        for v in (
            rec.sys_vendor,
            rec.product_name,
            rec.product_version,
            rec.product_serial,
            rec.board_vendor,
            rec.board_name,
            rec.bios_vendor,
            rec.bios_version,
            rec.bios_date,
            rec.chassis_vendor,
            rec.chassis_type_code,
        )
    ) or bool(rec.placeholders)


@telemetry(
    "system.dmi", SYSTEM, "DMI/SMBIOS identity: maker, model, BIOS version", support=_support
)
def dmi(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    rec = read_dmi(ctx.sysfs)
    if rec is None:
        raise Unsupported(_NO_DMI)
    info = to_proto(rec)
    facts = _facts(rec)
    if not _anything(rec) and rec.errors:
        first = sorted(rec.errors, key=_attribute)[0]
        exc = AttributeReadError(
            f"no DMI attribute could be read (e.g. {_attribute(first)}: {first.message})", DMI_DIR
        )
        yield errored(exc, facts=facts, dmi=info)
        return

    maker = info.sys_vendor or info.board_vendor or "unknown maker"
    model = info.product_name or info.board_name or "unknown model"
    evidence = f"{maker} {model}"
    if info.product_version:
        evidence += f" ({info.product_version})"
    if info.chassis_type:
        evidence += f", {info.chassis_type.lower()}"
    if info.bios_version:
        evidence += f", BIOS {info.bios_version}"
        if info.bios_date:
            evidence += f" of {info.bios_date}"
    yield result(PASS, evidence, facts=facts, dmi=info)
