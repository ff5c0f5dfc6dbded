"""The privacy filter on real reports of the captured machines, and its salt file.

The expected output is worked out here independently of the filter: a generic walk
over the original and the filtered copy, field by field, where a field's mark in the
contract says what it must have become ("h:" + HMAC-SHA256 for HASH, empty for DROP)
and every unmarked field must be unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import multiprocessing
import pkgutil
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

import probelink.v1
from probelink.agent.privacy import (
    SALT_BYTES,
    PrivacyFilter,
    load_or_create_salt,
    marked_fields,
)
from probelink.agent.state import StateError
from probelink.v1 import options_pb2, probe_pb2, report_pb2
from tests.server.ingest.reports import MACHINE_NAMES, captured_report

SALT = bytes(range(32))
OTHER_SALT = bytes(range(100, 132))
HASH, DROP = options_pb2.PERSONAL_DATA_HASH, options_pb2.PERSONAL_DATA_DROP
_FDP = descriptor_pb2.FieldDescriptorProto


def _mark(field: Any) -> int:
    kind: int = field.GetOptions().Extensions[options_pb2.personal]
    return kind


def _expected_hash(salt: bytes, value: str | bytes) -> str | bytes:
    if not value:
        return value
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    text = "h:" + hmac.new(salt, raw, hashlib.sha256).hexdigest()[:32]
    return text.encode() if isinstance(value, bytes) else text


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def assert_filtered(
    original: Any, filtered: Any, salt: bytes, seen: Counter[str], path: str = ""
) -> None:
    """Every field of `filtered` is what the contract says of the same field of `original`.

    `seen` counts the marked fields met with a non-empty value, by full name, so a test
    can check the comparison was not vacuous.
    """
    assert original.DESCRIPTOR is filtered.DESCRIPTOR, path
    for field in original.DESCRIPTOR.fields:
        where = f"{path}.{field.name}"
        before, after = getattr(original, field.name), getattr(filtered, field.name)
        kind = _mark(field)
        if kind == DROP:
            if field.is_repeated:
                assert len(after) == 0, where
            else:
                assert after == field.default_value, where
            if before:
                seen[field.full_name] += 1
        elif kind == HASH:
            if field.is_repeated:
                assert list(after) == [_expected_hash(salt, v) for v in before], where
            else:
                assert after == _expected_hash(salt, before), where
            if before:
                seen[field.full_name] += 1
        elif _is_map(field):
            assert sorted(before) == sorted(after), where
            value_field = field.message_type.fields_by_name["value"]
            for key in before:
                if value_field.message_type is None:
                    assert before[key] == after[key], f"{where}[{key!r}]"
                else:
                    assert_filtered(before[key], after[key], salt, seen, f"{where}[{key!r}]")
        elif field.message_type is not None and field.is_repeated:
            assert len(before) == len(after), where
            for i, (b, a) in enumerate(zip(before, after, strict=True)):
                assert_filtered(b, a, salt, seen, f"{where}[{i}]")
        elif field.message_type is not None:
            assert original.HasField(field.name) == filtered.HasField(field.name), where
            if original.HasField(field.name):
                assert_filtered(before, after, salt, seen, where)
        else:
            assert before == after, where
    for oneof in original.DESCRIPTOR.oneofs:
        chosen = original.WhichOneof(oneof.name)
        # A dropped member leaves its oneof unset; any other choice stays as it was.
        if chosen is not None and _mark(original.DESCRIPTOR.fields_by_name[chosen]) == DROP:
            chosen = None
        assert filtered.WhichOneof(oneof.name) == chosen, f"{path}.{oneof.name}"


def _all_messages() -> list[Descriptor]:
    """Every message type of the contract, nested ones too, from every probelink.v1 module."""
    out: list[Descriptor] = []

    def walk(d: Descriptor) -> None:
        out.append(d)
        for nested in d.nested_types:
            walk(nested)

    for info in pkgutil.iter_modules(probelink.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"probelink.v1.{info.name}")
            for d in module.DESCRIPTOR.message_types_by_name.values():
                walk(d)
    return out


# -- the contract's marks ---------------------------------------------------------------


def test_every_mark_in_the_contract_is_one_the_filter_can_honour() -> None:
    messages = _all_messages()
    marks = {
        f.full_name: (_mark(f), f.type, f.is_repeated)
        for d in messages
        for f in d.fields
        if _mark(f) != options_pb2.PERSONAL_DATA_UNSPECIFIED
    }
    assert marks, "the contract marks no field as personal: the options are not loaded"
    for name, (kind, ftype, _) in marks.items():
        assert kind in (HASH, DROP), name
        assert ftype in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES), name
    # The filter accepts every message type of the contract...
    for d in messages:
        marked_fields(d)
    # ...and every mark is on a field a Report can carry: only Reports are filtered, so
    # a mark anywhere else would protect nothing.
    assert marked_fields(report_pb2.Report.DESCRIPTOR) == {
        name: kind for name, (kind, _, _) in marks.items()
    }


def _pool_with(field: _FDP, *, extra: list[descriptor_pb2.DescriptorProto] = ()) -> Any:  # type: ignore[assignment]
    """A real message class with one field `field`, built from a descriptor at run time."""
    pool = descriptor_pool.DescriptorPool()
    for fd in (descriptor_pb2.DESCRIPTOR, options_pb2.DESCRIPTOR):
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name="privacy_test/marks.proto",
        package="privacy_test",
        syntax="proto3",
        dependency=["probelink/v1/options.proto"],
    )
    file.message_type.extend(extra)
    message = file.message_type.add(name="Marked")
    message.field.append(field)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("privacy_test.Marked"))


def _field(name: str, ftype: Any, kind: Any, **more: Any) -> _FDP:
    more.setdefault("label", _FDP.LABEL_OPTIONAL)
    field = _FDP(name=name, number=1, type=ftype, **more)
    field.options.Extensions[options_pb2.personal] = kind
    return field


@pytest.mark.parametrize(
    ("field", "says"),
    [
        (
            _field("count", _FDP.TYPE_INT32, HASH),
            "privacy_test.Marked.count is marked PERSONAL_DATA_HASH but is a field of type int32",
        ),
        (
            _field("inner", _FDP.TYPE_MESSAGE, DROP, type_name=".privacy_test.Inner"),
            "privacy_test.Marked.inner is marked PERSONAL_DATA_DROP but is a field of type message",
        ),
        (
            _field("ratio", _FDP.TYPE_DOUBLE, DROP),
            "privacy_test.Marked.ratio is marked PERSONAL_DATA_DROP but is a field of type double",
        ),
        (
            _field("name", _FDP.TYPE_STRING, 7),
            "privacy_test.Marked.name is marked personal = 7, a PersonalData value this agent "
            "does not know",
        ),
    ],
    ids=["int-hash", "message-drop", "double-drop", "unknown-kind"],
)
def test_a_mark_the_filter_cannot_honour_is_refused(field: _FDP, says: str) -> None:
    inner = descriptor_pb2.DescriptorProto(name="Inner")
    inner.field.add(name="text", number=1, type=_FDP.TYPE_STRING, label=_FDP.LABEL_OPTIONAL)
    cls = _pool_with(field, extra=[inner])
    with pytest.raises(ValueError) as refused:
        PrivacyFilter(SALT).apply(cls())
    assert str(refused.value).startswith(says)
    with pytest.raises(ValueError, match=r"^privacy_test\.Marked\."):
        marked_fields(cls.DESCRIPTOR)


def test_a_short_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="the privacy salt is 8 bytes; it needs at least 16"):
        PrivacyFilter(b"12345678")


def test_repeated_strings_bytes_maps_and_oneofs_are_treated_generically() -> None:
    """Shapes the contract does not use yet, on a message built at run time."""
    pool = descriptor_pool.DescriptorPool()
    for fd in (descriptor_pb2.DESCRIPTOR, options_pb2.DESCRIPTOR):
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name="privacy_test/shapes.proto",
        package="privacy_shapes",
        syntax="proto3",
        dependency=["probelink/v1/options.proto"],
    )
    inner = file.message_type.add(name="Inner")
    inner.field.append(_field("serial", _FDP.TYPE_STRING, HASH))
    inner.field.add(name="label", number=2, type=_FDP.TYPE_STRING, label=_FDP.LABEL_OPTIONAL)
    outer = file.message_type.add(name="Outer")
    entry = outer.nested_type.add(name="ByNameEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_FDP.TYPE_STRING, label=_FDP.LABEL_OPTIONAL)
    entry.field.add(
        name="value",
        number=2,
        type=_FDP.TYPE_MESSAGE,
        type_name=".privacy_shapes.Inner",
        label=_FDP.LABEL_OPTIONAL,
    )
    outer.oneof_decl.add(name="pick")
    fields = [
        _field("macs", _FDP.TYPE_STRING, HASH, label=_FDP.LABEL_REPEATED),
        _field("blob", _FDP.TYPE_BYTES, HASH),
        _field("host", _FDP.TYPE_STRING, DROP, oneof_index=0),
        _FDP(
            name="inner", type=_FDP.TYPE_MESSAGE, type_name=".privacy_shapes.Inner", oneof_index=0
        ),
        _FDP(
            name="by_name",
            type=_FDP.TYPE_MESSAGE,
            type_name=".privacy_shapes.Outer.ByNameEntry",
            label=_FDP.LABEL_REPEATED,
        ),
        _FDP(
            name="items",
            type=_FDP.TYPE_MESSAGE,
            type_name=".privacy_shapes.Inner",
            label=_FDP.LABEL_REPEATED,
        ),
    ]
    for number, field in enumerate(fields, start=1):
        field.number = number
        if not field.HasField("label"):
            field.label = _FDP.LABEL_OPTIONAL
    outer.field.extend(fields)
    pool.Add(file)
    cls: Any = message_factory.GetMessageClass(pool.FindMessageTypeByName("privacy_shapes.Outer"))

    message = cls(macs=["aa:bb", "", "cc:dd"], blob=b"\x00\x01", host="my-laptop")
    message.by_name["a"].serial = "S1"
    message.by_name["a"].label = "left"
    message.by_name["b"].label = "no serial"
    message.items.add(serial="S2", label="x")
    message.items.add(serial="S3")
    original = cls()
    original.CopyFrom(message)

    filtered = PrivacyFilter(SALT).apply(message)
    seen: Counter[str] = Counter()
    assert_filtered(message, filtered, SALT, seen)
    assert message == original, "the input was changed"
    assert filtered.WhichOneof("pick") is None, "the dropped oneof member is still chosen"
    assert seen == {
        "privacy_shapes.Outer.macs": 1,
        "privacy_shapes.Outer.blob": 1,
        "privacy_shapes.Outer.host": 1,
        "privacy_shapes.Inner.serial": 3,
    }

    # A oneof that holds the message member is descended into.
    chose_inner = cls()
    chose_inner.inner.serial = "S4"
    assert PrivacyFilter(SALT).apply(chose_inner).inner.serial == _expected_hash(SALT, "S4")


# -- real reports -----------------------------------------------------------------------

# The marked fields each captured machine's report fills: proves the walk is not vacuous.
FILLED = {
    "board-iio-typec": {
        "probelink.v1.NetworkLink.mac_address": 2,
        "probelink.v1.SerialPort.serial_number": 1,
        "probelink.v1.UsbDevice.serial": 3,
        "probelink.v1.OsInfo.hostname": 1,
    },
    "desktop-no-battery": {
        "probelink.v1.StorageDevice.serial_number": 4,
        "probelink.v1.NetworkLink.mac_address": 2,
        "probelink.v1.SerialPort.serial_number": 1,
        "probelink.v1.UsbDevice.serial": 5,
        "probelink.v1.OsInfo.hostname": 1,
    },
    "laptop-worn-battery": {
        "probelink.v1.DeviceIdentity.serial_number": 1,
        "probelink.v1.BatteryInfo.serial_number": 1,
        "probelink.v1.StorageDevice.serial_number": 2,
        "probelink.v1.NetworkLink.mac_address": 3,
        "probelink.v1.UsbDevice.serial": 4,
        "probelink.v1.DmiInfo.product_serial": 1,
        "probelink.v1.OsInfo.hostname": 1,
    },
    "phone-charge-units": {
        "probelink.v1.DeviceIdentity.serial_number": 1,
        "probelink.v1.NetworkLink.mac_address": 2,
        "probelink.v1.OsInfo.hostname": 1,
    },
}


def test_every_captured_machine_is_covered() -> None:
    assert sorted(FILLED) == sorted(MACHINE_NAMES)


@pytest.mark.parametrize("machine", MACHINE_NAMES)
def test_every_marked_field_is_filtered_and_nothing_else_changes(machine: str) -> None:
    original = captured_report(machine)
    untouched = report_pb2.Report()
    untouched.CopyFrom(original)

    filtered = PrivacyFilter(SALT).apply(original)

    assert original == untouched, "apply() changed its input"
    assert filtered is not original
    seen: Counter[str] = Counter()
    assert_filtered(original, filtered, SALT, seen)
    assert dict(seen) == FILLED[machine]


@pytest.mark.parametrize("machine", MACHINE_NAMES)
def test_the_hostname_is_gone(machine: str) -> None:
    original = captured_report(machine)
    (os_before,) = [r.os for r in original.results if r.HasField("os")]
    assert os_before.hostname, "the fixture has no hostname: this test would prove nothing"

    filtered = PrivacyFilter(SALT).apply(original)

    (os_after,) = [r.os for r in filtered.results if r.HasField("os")]
    assert os_after.hostname == ""
    assert os_before.hostname.encode() not in filtered.SerializeToString()


def _has(result: probe_pb2.ProbeResult, family: str) -> bool:
    return result.WhichOneof("data") == family


def test_repeated_results_are_each_filtered_and_stay_distinct() -> None:
    """Several batteries, drives, USB devices and links: every one hashed, none merged."""
    report = captured_report("desktop-no-battery")
    battery = captured_report("laptop-worn-battery").results[0]
    assert battery.HasField("battery")
    for serial in ("BAT-A-0001", "BAT-B-0002", "BAT-C-0003"):
        added = report.results.add()
        added.CopyFrom(battery)
        added.battery.serial_number = serial

    filtered = PrivacyFilter(SALT).apply(report)

    seen: Counter[str] = Counter()
    assert_filtered(report, filtered, SALT, seen)
    for family, field in [
        ("battery", "serial_number"),
        ("storage_device", "serial_number"),
        ("usb_device", "serial"),
        ("network_link", "mac_address"),
    ]:
        before = [getattr(getattr(r, family), field) for r in report.results if _has(r, family)]
        after = [getattr(getattr(r, family), field) for r in filtered.results if _has(r, family)]
        assert len(before) >= 2, family
        # (the desktop's Bluetooth mouse battery has no serial: it stays empty)
        assert all(
            (a.startswith("h:") and len(a) == 34) if b else a == ""
            for b, a in zip(before, after, strict=True)
        ), family
        # Equal values hash equal, different ones differently: the pattern survives.
        assert [before.index(b) for b in before] == [after.index(a) for a in after], family
    assert seen["probelink.v1.BatteryInfo.serial_number"] == 3


def test_the_same_salt_gives_the_same_report_and_another_salt_another() -> None:
    report = captured_report("laptop-worn-battery")

    first = PrivacyFilter(SALT).apply(report)
    again = PrivacyFilter(SALT).apply(captured_report("laptop-worn-battery"))
    other = PrivacyFilter(OTHER_SALT).apply(report)

    assert first.SerializeToString(deterministic=True) == again.SerializeToString(
        deterministic=True
    )
    # Under the other salt, every hashed value differs and the rest is identical.
    seen: Counter[str] = Counter()
    assert_filtered(report, other, OTHER_SALT, seen)
    assert first.device.serial_number != other.device.serial_number
    assert first.device.serial_number == _expected_hash(SALT, report.device.serial_number)


def _personal_values(message: Message, out: set[str]) -> None:
    for field, value in message.ListFields():
        if field.message_type is not None:
            for item in value if field.is_repeated else [value]:
                _personal_values(item, out)
        elif _mark(field) and isinstance(value, str):
            out.add(value)


# Values shorter than this ("0001", a battery's "1842") can turn up in other text by chance.
_MEANINGFUL = 6


@pytest.mark.parametrize("machine", MACHINE_NAMES)
def test_no_personal_value_survives_anywhere_in_the_sent_bytes(machine: str) -> None:
    """The promise end to end: not only the marked fields, nothing in the report holds them."""
    report = captured_report(machine)
    values: set[str] = set()
    _personal_values(report, values)
    values = {v for v in values if len(v) >= _MEANINGFUL and v.strip("0:.")}

    sent = PrivacyFilter(SALT).apply(report).SerializeToString()

    assert values
    assert [v for v in sorted(values) if v.encode() in sent] == []


# -- the salt file ----------------------------------------------------------------------


def test_the_salt_is_created_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "privacy-salt"

    salt = load_or_create_salt(path)

    assert len(salt) == SALT_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == salt
    assert sorted(p.name for p in path.parent.iterdir()) == ["privacy-salt"], "temp file left"
    assert load_or_create_salt(path) == salt
    assert load_or_create_salt(tmp_path / "elsewhere") != salt
    PrivacyFilter(salt)  # what it makes, the filter takes


def test_an_existing_salt_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "privacy-salt"
    path.write_bytes(OTHER_SALT)
    assert load_or_create_salt(path) == OTHER_SALT


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_salt_of_the_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "privacy-salt"
    path.write_bytes(b"x" * size)
    with pytest.raises(StateError) as refused:
        load_or_create_salt(path)
    assert str(refused.value).startswith(
        f"the privacy salt {path} holds {size} bytes, not 32: it is damaged"
    )
    assert path.read_bytes() == b"x" * size, "a bad salt must be kept for the person to look at"


@pytest.mark.parametrize("blocker", ["dir", "file"])
def test_an_unreadable_salt_is_refused(tmp_path: Path, blocker: str) -> None:
    # Unreadable even for root, which ignores permission bits: a dir where the salt
    # should be, or a file where its dir should be.
    if blocker == "dir":
        path = tmp_path / "privacy-salt"
        path.mkdir()
        why = "Is a directory"
    else:
        (tmp_path / "state").write_text("not a dir")
        path = tmp_path / "state" / "privacy-salt"
        why = "Not a directory"
    with pytest.raises(StateError) as refused:
        load_or_create_salt(path)
    assert str(refused.value) == (
        f"cannot read the privacy salt {path}: {why}; the agent's user must be able to read it"
    )


def test_a_salt_that_cannot_be_created_is_refused() -> None:
    # /proc takes no new files, even from root: a real refusal from the kernel.
    path = Path("/proc/probelink-privacy-salt")
    with pytest.raises(StateError, match=f"cannot create the privacy salt {path}"):
        load_or_create_salt(path)


def _race(path: str, barrier: Any, results: Any, rounds: int) -> None:
    for i in range(rounds):
        barrier.wait()
        results.put((i, load_or_create_salt(Path(path) / f"salt-{i}")))


def test_agents_starting_at_once_agree_on_one_salt(tmp_path: Path) -> None:
    """Real processes racing to create the same salt file all end up with the same salt."""
    workers, rounds = 6, 15
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(str(tmp_path), barrier, results, rounds))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in range(workers * rounds)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    by_round: dict[int, set[bytes]] = {}
    for i, salt in got:
        by_round.setdefault(i, set()).add(salt)
    for i in range(rounds):
        assert by_round[i] == {(tmp_path / f"salt-{i}").read_bytes()}, f"round {i}"
