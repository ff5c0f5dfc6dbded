"""Type-C and Power Delivery readers, and the ports.typec verdicts (what a charger offers)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from probelink.probes.context import ProbeContext
from probelink.probes.ports.typec_ports import charger_offer_w, typec_ports
from probelink.probes.readers.class_typec import (
    TypecCable,
    TypecPartner,
    TypecPort,
    read_typec_ports,
)
from probelink.probes.readers.class_usb_power_delivery import (
    PowerDataObject,
    PowerDelivery,
    read_all_power_delivery,
)
from probelink.probes.readers.problems import ReadProblem
from probelink.probes.registry import get
from probelink.probes.results import ERROR, PASS, WARN, check
from probelink.probes.runner import run_one
from probelink.probes.sysread import SysfsRoot
from probelink.v1 import ports_pb2, probe_pb2
from tests.conftest import MACHINES
from tests.treebuilder import Link, write_tree

BOARD = MACHINES / "board-iio-typec" / "sys"
PHONE = MACHINES / "phone-charge-units" / "sys"

CHARGER_65W = PowerDelivery(
    name="pd1",
    revision="3.0",
    source_capabilities=[
        PowerDataObject(1, "fixed_supply", voltage_mv=5000, max_current_ma=3000),
        PowerDataObject(2, "fixed_supply", voltage_mv=9000, max_current_ma=3000),
        PowerDataObject(3, "fixed_supply", voltage_mv=15000, max_current_ma=3000),
        PowerDataObject(4, "fixed_supply", voltage_mv=20000, max_current_ma=3250),
        PowerDataObject(
            5, "programmable_supply", min_voltage_mv=3300, max_voltage_mv=21000, max_current_ma=3000
        ),
    ],
)


def test_board_ports_partner_cable_and_charger_are_read_whole() -> None:
    assert read_typec_ports(SysfsRoot(BOARD)) == [
        TypecPort(
            name="port0",
            data_role="device",
            power_role="sink",
            port_type="dual",
            power_operation_mode="usb_power_delivery",
            pd_revision="3.0",
            partner=TypecPartner(
                name="port0-partner",
                pd_revision="3.0",
                accessory_mode="none",
                supports_pd=True,
                product_type="power_brick",
                power_delivery=CHARGER_65W,
            ),
            cable=TypecCable(
                name="port0-cable", type="passive", plug_type="type-c", pd_revision="3.0"
            ),
        ),
        TypecPort(
            name="port1",
            data_role="host",
            power_role="source",
            port_type="dual",
            power_operation_mode="default",
            pd_revision="3.0",
        ),
    ]


def test_watts_of_each_supply_type() -> None:
    assert [p.offered_w for p in CHARGER_65W.source_capabilities] == [15.0, 27.0, 45.0, 65.0, 63.0]
    assert CHARGER_65W.max_offered_w == 65.0
    assert (
        PowerDataObject(
            1, "battery", min_voltage_mv=5000, max_voltage_mv=20000, max_power_mw=45000
        ).offered_w
        == 45.0
    )
    assert (
        PowerDataObject(
            1, "variable_supply", min_voltage_mv=5000, max_voltage_mv=12000, max_current_ma=1500
        ).offered_w
        == 18.0
    )
    assert PowerDataObject(1, "fixed_supply", voltage_mv=5000).offered_w is None
    assert PowerDelivery(name="pd9").max_offered_w is None


def test_the_class_lists_port_and_partner_pd_objects() -> None:
    pds = {pd.name: pd for pd in read_all_power_delivery(SysfsRoot(BOARD))}
    assert list(pds) == ["pd0", "pd1"]
    assert pds["pd0"].source_capabilities == []  # the port's own object holds sink caps only
    assert pds["pd1"] == CHARGER_65W


def test_board_charger_is_65_w_and_passes() -> None:
    ctx = ProbeContext.for_machine(BOARD)
    port0, port1 = typec_ports(ctx)
    assert (port0.status, list(port0.checks)) == (PASS, [])
    assert port0.evidence == "port0 (device/sink): a charger attached, PD 3.0, offers up to 65 W"
    assert port0.typec_port == ports_pb2.TypecPort(
        port="port0",
        data_role="device",
        power_role="sink",
        port_type="dual",
        power_operation_mode="usb_power_delivery",
        pd_revision="3.0",
        partner=ports_pb2.TypecPartner(
            pd_revision="3.0",
            accessory_mode="none",
            supports_pd=True,
            identity_product_type="power_brick",
            max_offered_w=65.0,
            source_capabilities=[  # highest first
                ports_pb2.PdSourceCapability(
                    type="fixed_supply", voltage_v=20, max_current_a=3.25, max_power_w=65
                ),
                ports_pb2.PdSourceCapability(
                    type="programmable_supply",
                    min_voltage_v=3.3,
                    max_voltage_v=21,
                    max_current_a=3,
                    max_power_w=63,
                ),
                ports_pb2.PdSourceCapability(
                    type="fixed_supply", voltage_v=15, max_current_a=3, max_power_w=45
                ),
                ports_pb2.PdSourceCapability(
                    type="fixed_supply", voltage_v=9, max_current_a=3, max_power_w=27
                ),
                ports_pb2.PdSourceCapability(
                    type="fixed_supply", voltage_v=5, max_current_a=3, max_power_w=15
                ),
            ],
        ),
        cable=ports_pb2.TypecCable(type="passive", plug_type="type-c", pd_revision="3.0"),
    )
    assert [(m.name, m.value, m.unit) for m in port0.measurements] == [
        ("charger_offered_power", 65.0, "watt")
    ]
    assert (port1.status, port1.evidence) == (PASS, "port1 (host/source): nothing plugged in")
    assert not port1.typec_port.HasField("partner")


def test_phone_on_a_10_w_charger_is_told_to_use_a_stronger_one() -> None:
    [port0] = typec_ports(ProbeContext.for_machine(PHONE))
    assert port0.status == WARN
    assert list(port0.checks) == [
        check(
            "typec.slow_charger",
            WARN,
            "the charger on port0 offers at most 10 W, below 15 W: charging will be slow; "
            "use a charger of 15 W or more",
        )
    ]
    assert port0.typec_port.partner.max_offered_w == 10.0
    assert port0.evidence == ("port0 (device/sink): a charger attached, PD 2.0, offers up to 10 W")


def test_the_charger_limit_comes_from_the_context() -> None:
    ctx = ProbeContext.for_machine(PHONE, limits={"ports.min_charger_w": 10})
    [port0] = typec_ports(ctx)
    assert port0.status == PASS


def _port(
    tmp_path: Path,
    attrs: dict[str, str],
    partner: dict[str, str] | None = None,
    pdos: dict[str, dict[str, str]] | None = None,
) -> SysfsRoot:
    real = "devices/platform/USBC000:00/typec/port0"
    tree: dict[str, str | bytes | Link] = {"class/typec/port0": Link(f"../../{real}")}
    tree.update({f"{real}/{k}": v for k, v in attrs.items()})
    if partner is not None:
        tree["class/typec/port0-partner"] = Link(f"../../{real}/port0-partner")
        tree.update({f"{real}/port0-partner/{k}": v for k, v in partner.items()})
    if pdos is not None:
        pd = "devices/platform/USBC000:00/usb_power_delivery/pd1"
        tree[f"{real}/port0-partner/usb_power_delivery"] = Link("../../../usb_power_delivery/pd1")
        tree["class/usb_power_delivery/pd1"] = Link(f"../../{pd}")
        tree[f"{pd}/revision"] = "3.0\n"
        for name, values in pdos.items():
            tree.update({f"{pd}/source-capabilities/{name}/{k}": v for k, v in values.items()})
    return SysfsRoot(write_tree(tmp_path / "sys", tree))


SINK = {
    "data_role": "host [device]\n",
    "power_role": "source [sink]\n",
    "port_type": "[dual] source sink\n",
}


@pytest.mark.parametrize(
    ("mode", "watts", "status"),
    [
        ("1.5A\n", 7.5, WARN),
        ("3.0A\n", 15.0, PASS),
        ("default\n", None, PASS),  # USB default power, or BC 1.2: Type-C does not say; not judged
    ],
)
def test_charger_without_pd_offers_its_type_c_current(
    tmp_path: Path, mode: str, watts: float | None, status: int
) -> None:
    sysfs = _port(
        tmp_path,
        {**SINK, "power_operation_mode": mode},
        partner={"supports_usb_power_delivery": "no\n", "accessory_mode": "none\n"},
    )
    [port] = read_typec_ports(sysfs)
    assert charger_offer_w(port) == watts
    [r] = typec_ports(ProbeContext(sysfs=sysfs))
    assert r.status == status


def test_a_sink_partner_on_a_source_port_is_no_charger(tmp_path: Path) -> None:
    sysfs = _port(
        tmp_path,
        {
            "data_role": "[host] device\n",
            "power_role": "[source] sink\n",
            "power_operation_mode": "1.5A\n",
        },
        partner={"supports_usb_power_delivery": "no\n", "type": "peripheral\n"},
    )
    [r] = typec_ports(ProbeContext(sysfs=sysfs))
    assert (r.status, list(r.measurements)) == (PASS, [])
    assert r.evidence == "port0 (host/source): a device attached"


def test_pd_values_without_units_are_read_and_wrong_units_are_errors(tmp_path: Path) -> None:
    sysfs = _port(
        tmp_path,
        SINK,
        partner={"supports_usb_power_delivery": "yes\n"},
        pdos={
            "1:fixed_supply": {"voltage": "5000\n", "maximum_current": "3000mA\n"},
            "2:fixed_supply": {"voltage": "9V\n", "maximum_current": "2000mA\n"},
        },
    )
    [port] = read_typec_ports(sysfs)
    assert port.partner is not None and port.partner.power_delivery == PowerDelivery(
        name="pd1",
        revision="3.0",
        source_capabilities=[
            PowerDataObject(1, "fixed_supply", voltage_mv=5000, max_current_ma=3000),
            PowerDataObject(2, "fixed_supply", voltage_mv=None, max_current_ma=2000),
        ],
        errors=[
            ReadProblem(
                "class/typec/port0-partner/usb_power_delivery/source-capabilities/2:fixed_supply/voltage",
                "parse",
                "class/typec/port0-partner/usb_power_delivery/source-capabilities/2:fixed_supply/voltage:"
                " expected a value in mV, read '9V'",
            )
        ],
    )
    [r] = typec_ports(ProbeContext(sysfs=sysfs))
    assert r.status == ERROR and r.error.kind == probe_pb2.PROBE_ERROR_KIND_PARSE
    assert r.typec_port.partner.supports_pd  # what was read is still reported


def test_an_unreadable_port_is_an_error_and_other_ports_are_judged(tmp_path: Path) -> None:
    def failing(path: Path) -> bytes:
        if path.parts[-2:] == ("port1", "power_role"):
            raise OSError(errno.EIO, "Input/output error")
        return path.read_bytes()

    root = tmp_path / "sys"
    shutil.copytree(PHONE, root, symlinks=True)  # port0: the 10 W charger
    write_tree(
        root,
        {
            "class/typec/port1": Link("../../devices/platform/x/typec/port1"),
            "devices/platform/x/typec/port1/power_role": "[source] sink\n",
        },
    )
    port0, port1 = typec_ports(ProbeContext(sysfs=SysfsRoot(root, read=failing)))
    assert port0.status == WARN  # the slow charger is still found
    assert port1.status == ERROR
    assert port1.error.message == (
        "reading class/typec/port1/power_role failed: EIO (Input/output error)"
    )


def test_no_typec_class_is_a_skip(tmp_path: Path) -> None:
    ctx = ProbeContext.for_machine(MACHINES / "laptop-worn-battery" / "sys")
    [r] = run_one(get("ports.typec"), ctx)
    assert r.evidence == "no USB-C port class on this machine (no class/typec in sysfs)"


def test_a_computer_powering_the_port_is_named_as_such(tmp_path: Path) -> None:
    sysfs = _port(
        tmp_path,
        SINK,
        partner={"supports_usb_power_delivery": "yes\n", "type": "host\n"},
        pdos={"1:fixed_supply": {"voltage": "5000mV\n", "maximum_current": "900mA\n"}},
    )
    [r] = typec_ports(ProbeContext(sysfs=sysfs))
    assert r.status == WARN
    assert r.checks[0].message.startswith("the computer on port0 offers at most 4.5 W")
    assert r.evidence == "port0 (device/sink): a computer attached, USB PD, offers up to 4.5 W"
