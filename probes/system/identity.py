"""What the device is, for the report's DeviceIdentity: maker, model, serial, BIOS version.

    >>> ident = device_identity(ProbeContext.for_machine(MACHINES / "laptop-worn-battery" / "sys"))
    >>> ident.manufacturer, ident.model, ident.serial_number
    ('LENOVO', '20XW00GMUS', 'PF3ABCDE')
    >>> [(f.component, f.version) for f in ident.firmware]
    [('bios', 'N32ET86W (1.62 )')]

A plain function the agent's report builder calls, not a registered probe. It reads
DMI (`readers/class_dmi.py`); where the system strings are vendor placeholders, as on
self-built desktops whose board maker leaves "System Product Name" in SMBIOS, the
board's vendor and name are the best identity there is and are used instead. A machine
without DMI (phones, ARM boards) is named by its device tree (`model`, the vendor prefix
of `compatible`, a boot loader's `serial-number`); the serial line (AT+CGSN) adds the
IMEI for devices on a bench.
"""

from __future__ import annotations

from probelink.probes.context import ProbeContext
from probelink.probes.readers.class_dmi import read_dmi
from probelink.probes.readers.firmware_devicetree import read_devicetree
from probelink.v1 import report_pb2


def device_identity(ctx: ProbeContext) -> report_pb2.DeviceIdentity:
    """The identity DMI (or else the device tree) gives; empty fields where it says nothing."""
    rec = read_dmi(ctx.sysfs)
    if rec is None:
        tree = read_devicetree(ctx.sysfs)
        if tree is None:
            return report_pb2.DeviceIdentity()
        return report_pb2.DeviceIdentity(
            manufacturer=tree.vendor or "",
            model=tree.model or "",
            serial_number=tree.serial_number or "",
        )
    identity = report_pb2.DeviceIdentity(
        manufacturer=rec.sys_vendor or rec.board_vendor or "",
        model=rec.product_name or rec.board_name or "",
        # The unit's serial; a board's serial would name a replaceable part, not the device.
        serial_number=rec.product_serial or "",
    )
    if rec.bios_version:
        identity.firmware.add(component="bios", version=rec.bios_version)
    return identity
