"""DMI / SMBIOS identity from `class/dmi/id` (drivers/firmware/dmi-id.c): who made the machine.

    >>> dmi = read_dmi(SysfsRoot(Path("tests/fixtures/machines/laptop-worn-battery/sys")))
    >>> dmi.sys_vendor, dmi.product_name, dmi.bios_version
    ('LENOVO', '20XW00GMUS', 'N32ET86W (1.62 )')
    >>> dmi.chassis_type
    'Notebook'

`read_dmi` returns None when the machine has no DMI at all (ARM phones and boards
describe themselves with a device tree instead); callers turn that into SKIP.

Three things real machines do, and how they come out here:

- **Placeholders.** Firmware vendors ship SMBIOS templates and board makers often leave
  the template text in: "To Be Filled By O.E.M.", "Default string", "System Product
  Name", a serial of "0123456789". Such a string names no model and no unit, and two
  different machines would share it, so it is treated as absent; the string itself is
  kept in `placeholders` so a reader of the report sees why the field is empty.
- **Root-only attributes.** The kernel makes `product_serial` (and the other serials and
  the UUID) mode 0400. Run as a normal user, the read fails with EACCES; that field is
  absent and the reason is kept in `errors`, while everything else is still read.
- **chassis_type** is the SMBIOS enumeration number (the kernel masks the lock bit);
  it is given both as the number and as the spec's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probelink.probes.readers.problems import Problems, ReadProblem
from probelink.probes.sysread import SysfsRoot

DMI_DIR = "class/dmi/id"

# The attributes read; all 0444 except product_serial (0400).
TEXT_ATTRIBUTES = (
    "sys_vendor",
    "product_name",
    "product_version",
    "product_serial",
    "board_vendor",
    "board_name",
    "bios_vendor",
    "bios_version",
    "bios_date",
    "chassis_vendor",
)

# Template text that vendors leave in SMBIOS strings (compared case-insensitively after
# stripping). Each was seen in the wild on shipping machines; none names a real model,
# vendor or unit, so a value equal to one of them says nothing about this machine.
PLACEHOLDERS = frozenset(
    s.casefold()
    for s in (
        "To Be Filled By O.E.M.",
        "To be filled by O.E.M.",
        "Default string",
        "System Product Name",
        "System Version",
        "System manufacturer",
        "System Manufacturer",
        "System Serial Number",
        "Base Board Product Name",
        "Chassis Manufacture",
        "Chassis Serial Number",
        "Not Applicable",
        "Not Specified",
        "Not Available",
        "None",
        "N/A",
        "O.E.M.",
        "OEM",
        "Type1ProductConfigId",
        "Type2 - Board Product Name1",
        "0123456789",
        "123456789",
        "INVALID",
        "XXXXXXXXXX",
    )
)

# SMBIOS 3.x, 7.4.1 "System Enclosure or Chassis Types".
CHASSIS_TYPES: dict[int, str] = {
    1: "Other",
    2: "Unknown",
    3: "Desktop",
    4: "Low Profile Desktop",
    5: "Pizza Box",
    6: "Mini Tower",
    7: "Tower",
    8: "Portable",
    9: "Laptop",
    10: "Notebook",
    11: "Hand Held",
    12: "Docking Station",
    13: "All in One",
    14: "Sub Notebook",
    15: "Space-saving",
    16: "Lunch Box",
    17: "Main Server Chassis",
    18: "Expansion Chassis",
    19: "SubChassis",
    20: "Bus Expansion Chassis",
    21: "Peripheral Chassis",
    22: "RAID Chassis",
    23: "Rack Mount Chassis",
    24: "Sealed-case PC",
    25: "Multi-system Chassis",
    26: "Compact PCI",
    27: "Advanced TCA",
    28: "Blade",
    29: "Blade Enclosure",
    30: "Tablet",
    31: "Convertible",
    32: "Detachable",
    33: "IoT Gateway",
    34: "Embedded PC",
    35: "Mini PC",
    36: "Stick PC",
}


def is_placeholder(value: str) -> bool:
    """Whether an SMBIOS string is vendor template text rather than a real value."""
    text = value.strip()
    # A run of one repeated character ("00000000", "xxxxxxxx", "        ") is filler too.
    return text.casefold() in PLACEHOLDERS or (len(text) > 1 and len(set(text)) == 1)


def chassis_type_name(code: int) -> str:
    """The SMBIOS name of a chassis type number; "type N" for numbers the spec lacks."""
    return CHASSIS_TYPES.get(code, f"type {code}")


@dataclass(frozen=True)
class DmiRecord:
    """What `class/dmi/id` says, one field per attribute; None when absent.

    Absent covers a missing file, an empty value, a vendor placeholder (see
    `placeholders`) and a file that could not be read or parsed (see `errors`).
    """

    sys_vendor: str | None = None  # class/dmi/id/sys_vendor
    product_name: str | None = None  # class/dmi/id/product_name
    product_version: str | None = None  # class/dmi/id/product_version
    product_serial: str | None = None  # class/dmi/id/product_serial (root-only)
    board_vendor: str | None = None  # class/dmi/id/board_vendor
    board_name: str | None = None  # class/dmi/id/board_name
    bios_vendor: str | None = None  # class/dmi/id/bios_vendor
    bios_version: str | None = None  # class/dmi/id/bios_version
    bios_date: str | None = None  # class/dmi/id/bios_date, MM/DD/YYYY as SMBIOS has it
    chassis_vendor: str | None = None  # class/dmi/id/chassis_vendor
    chassis_type_code: int | None = None  # class/dmi/id/chassis_type, SMBIOS number
    chassis_type: str | None = None  # its SMBIOS name, e.g. "Notebook"
    # attribute -> the placeholder string it held and that was dropped.
    placeholders: dict[str, str] = field(default_factory=dict)
    # Why an attribute could not be read (e.g. EACCES on the root-only serial) or parsed.
    errors: list[ReadProblem] = field(default_factory=list)


def read_dmi(sysfs: SysfsRoot) -> DmiRecord | None:
    """The DMI identity under `sysfs`, or None when the machine has no `class/dmi/id`."""
    if not sysfs.is_dir(DMI_DIR):
        return None
    values: dict[str, str | None] = {}
    placeholders: dict[str, str] = {}
    problems = Problems()
    for name in TEXT_ATTRIBUTES:
        text = problems.read(sysfs.read_text, f"{DMI_DIR}/{name}")
        if text is not None and is_placeholder(text):
            placeholders[name] = text
            text = None
        values[name] = text

    code = problems.read(sysfs.read_int, f"{DMI_DIR}/chassis_type")
    return DmiRecord(
        sys_vendor=values["sys_vendor"],
        product_name=values["product_name"],
        product_version=values["product_version"],
        product_serial=values["product_serial"],
        board_vendor=values["board_vendor"],
        board_name=values["board_name"],
        bios_vendor=values["bios_vendor"],
        bios_version=values["bios_version"],
        bios_date=values["bios_date"],
        chassis_vendor=values["chassis_vendor"],
        chassis_type_code=code,
        chassis_type=None if code is None else chassis_type_name(code),
        placeholders=placeholders,
        errors=problems.items,
    )
