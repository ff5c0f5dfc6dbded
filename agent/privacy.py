"""The agent's privacy filter: what the contract marks as personal never leaves the device.

    salt = load_or_create_salt(state_dir / SALT_FILE)     # 32 random bytes, kept 0600
    sent = PrivacyFilter(salt).apply(report)               # a filtered copy; `report` unchanged
    sent.device.serial_number                              # "h:3f9c…" (32 hex digits)
    sent.results[34].os.hostname                           # "" (dropped)

The filter knows no field names. It walks the message by its descriptors and acts on
the `(probelink.v1.personal)` field option of `options.proto`: marking a field there
is the whole of making it private, there is no second list to keep in step.

- PERSONAL_DATA_DROP: the field is cleared.
- PERSONAL_DATA_HASH: a non-empty value becomes "h:" + the first 32 hex digits of
  HMAC-SHA256(salt, value); empty stays empty. The hash is KEYED because a plain hash
  of a serial number, an IMEI or a MAC address is reversible by enumeration: their
  space is small and structured (a MAC is a 24-bit vendor prefix plus 24 bits, an IMEI
  is 14 digits plus a check digit), so anyone with the report could hash every
  candidate and look the value up. Without the salt that is impossible; with the same
  salt, the same value always gives the same hash, so the server still lines up one
  device's reports (and sees that two fields hold the same serial). 128 bits of digest
  leave no practical chance of two values colliding in a fleet.

The salt is per deployment: `load_or_create_salt` makes one on first use, and an
operator who wants hashes to match across devices (a drive moved to another machine)
gives every device the same salt file.

Which fields of which message types to treat is worked out once per type from the
descriptors and cached, so applying the filter only visits the branches of the tree
that can hold a marked field. A mark the filter cannot honour (on a number, a message
or a map, or a PersonalData value this agent does not know) raises ValueError when the
type is first seen, never silently passes the value through.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from google.protobuf.message import Message

from probelink.agent.state import StateError, write_private
from probelink.v1 import options_pb2, report_pb2

# The salt file's suggested name in the agent's state dir.
SALT_FILE = "privacy-salt"
#: Where a deployment points its agents at the salt they share.
SALT_FILE_ENV = "PROBELINK_PRIVACY_SALT_FILE"
SALT_BYTES = 32
# Below this a salt is guessable, and the hashes reversible again.
MIN_SALT_BYTES = 16
HASH_PREFIX = "h:"
# 32 hex digits = 128 bits of the HMAC: short in a report, long enough never to collide.
HASH_HEX_DIGITS = 32

_M = TypeVar("_M", bound=Message)

_FieldType = FieldDescriptorProto.Type
_TEXT_TYPES = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)
_KNOWN_KINDS = (options_pb2.PERSONAL_DATA_HASH, options_pb2.PERSONAL_DATA_DROP)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to do in one message type: its own marked fields, and where to descend.

    Fields are kept by name and sorted by shape up front, so the walk makes no
    descriptor calls: applying the filter costs little more than the copy.
    """

    dropped: tuple[str, ...]
    # (name, is_repeated)
    hashed: tuple[tuple[str, bool], ...]
    # Only message fields whose type can reach a mark; other branches are never visited.
    singular: tuple[str, ...]
    # (oneof name, its members that can reach a mark): one WhichOneof, not a HasField each.
    oneofs: tuple[tuple[str, frozenset[str]], ...]
    repeated: tuple[str, ...]
    maps: tuple[str, ...]


# Plans depend only on the descriptors, not on the salt: one cache for every filter.
_PLANS: dict[Descriptor, _Plan] = {}
_PLANS_LOCK = threading.Lock()


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _child_type(field: FieldDescriptor) -> Descriptor | None:
    """The message type a field leads to: its own, or a map's value type; None for scalars."""
    if field.message_type is None:
        return None
    if _is_map(field):
        value_type: Descriptor | None = field.message_type.fields_by_name["value"].message_type
        return value_type
    message_type: Descriptor = field.message_type
    return message_type


def _mark(field: FieldDescriptor) -> int:
    """The field's PersonalData mark (0 when unmarked); ValueError for one we cannot honour."""
    kind: int = field.GetOptions().Extensions[options_pb2.personal]
    if kind == options_pb2.PERSONAL_DATA_UNSPECIFIED:
        return kind
    if kind not in _KNOWN_KINDS:
        raise ValueError(
            f"{field.full_name} is marked personal = {kind}, a PersonalData value this agent "
            "does not know: update the agent before sending reports with this contract"
        )
    if field.type not in _TEXT_TYPES or _is_map(field):
        kind_name = options_pb2.PersonalData.Name(options_pb2.PersonalData.ValueType(kind))
        type_name = _FieldType.Name(_FieldType.ValueType(field.type)).removeprefix("TYPE_")
        what = "a map" if _is_map(field) else f"a field of type {type_name.lower()}"
        raise ValueError(
            f"{field.full_name} is marked {kind_name} but is {what}: "
            "the privacy filter can hash or drop only string and bytes fields; mark the "
            "string fields inside it instead, or change the field's type"
        )
    return kind


def _reachable(root: Descriptor) -> list[Descriptor]:
    seen: dict[Descriptor, None] = {}
    stack = [root]
    while stack:
        d = stack.pop()
        if d in seen:
            continue
        seen[d] = None
        stack.extend(c for f in d.fields if (c := _child_type(f)) is not None)
    return list(seen)


def _build_plans(root: Descriptor) -> dict[Descriptor, _Plan]:
    types = _reachable(root)
    marks = {d: [(f, _mark(f)) for f in d.fields] for d in types}
    # Which types can reach a mark, to a fixed point: the tree may be recursive.
    reaches = {d: any(kind for _, kind in marks[d]) for d in types}
    changed = True
    while changed:
        changed = False
        for d in types:
            if not reaches[d] and any(
                (c := _child_type(f)) is not None and reaches[c] for f in d.fields
            ):
                reaches[d] = changed = True
    return {d: _plan_of(d, marks[d], reaches) for d in types}


def _plan_of(
    d: Descriptor, marks: list[tuple[FieldDescriptor, int]], reaches: dict[Descriptor, bool]
) -> _Plan:
    leads = [f for f in d.fields if (c := _child_type(f)) is not None and reaches[c]]
    oneofs: dict[str, set[str]] = {}
    for f in leads:
        if f.containing_oneof is not None:
            oneofs.setdefault(f.containing_oneof.name, set()).add(f.name)
    return _Plan(
        dropped=tuple(f.name for f, k in marks if k == options_pb2.PERSONAL_DATA_DROP),
        hashed=tuple(
            (f.name, f.is_repeated) for f, k in marks if k == options_pb2.PERSONAL_DATA_HASH
        ),
        singular=tuple(f.name for f in leads if not f.is_repeated and f.containing_oneof is None),
        oneofs=tuple((name, frozenset(members)) for name, members in oneofs.items()),
        repeated=tuple(f.name for f in leads if f.is_repeated and not _is_map(f)),
        maps=tuple(f.name for f in leads if _is_map(f)),
    )


def _plan(descriptor: Descriptor) -> _Plan:
    plan = _PLANS.get(descriptor)
    if plan is None:
        with _PLANS_LOCK:
            built = _build_plans(descriptor)
            _PLANS.update(built)
            plan = built[descriptor]
    return plan


def marked_fields(descriptor: Descriptor) -> dict[str, int]:
    """Every marked field a message of this type can hold: full name -> PersonalData.

    Raises ValueError for a mark the filter cannot honour. For `--preview` and tests:
    it says what the filter will touch without a message to filter.
    """
    return {
        f.full_name: kind
        for d in _reachable(descriptor)
        for f in d.fields
        if (kind := _mark(f)) != options_pb2.PERSONAL_DATA_UNSPECIFIED
    }


class PrivacyFilter:
    """Drops or hashes, with this salt, every field the contract marks as personal."""

    def __init__(self, salt: bytes) -> None:
        if len(salt) < MIN_SALT_BYTES:
            raise ValueError(
                f"the privacy salt is {len(salt)} bytes; it needs at least {MIN_SALT_BYTES} "
                "(a short salt can be guessed, and the hashed serials recovered)"
            )
        # The keyed state, set up once; each value hashes with a copy of it.
        self._hmac = hmac.new(salt, digestmod=hashlib.sha256)
        # Check the Report contract now: a bad mark fails at start-up, not on first upload.
        _plan(report_pb2.Report.DESCRIPTOR)

    def apply(self, message: _M) -> _M:
        """A filtered copy of `message` (a Report, or any contract message); it is not changed."""
        out = type(message)()
        out.CopyFrom(message)
        self._filter(out)
        return out

    def _hash(self, value: bytes) -> str:
        h = self._hmac.copy()
        h.update(value)
        return HASH_PREFIX + h.hexdigest()[:HASH_HEX_DIGITS]

    def _hashed(self, value: str | bytes) -> str | bytes:
        if isinstance(value, bytes):
            return self._hash(value).encode("ascii")
        return self._hash(value.encode("utf-8"))

    def _filter(self, message: Message) -> None:
        descriptor = cast(Descriptor, message.DESCRIPTOR)
        plan = _PLANS.get(descriptor) or _plan(descriptor)
        for name in plan.dropped:
            message.ClearField(name)
        for name, repeated in plan.hashed:
            value = getattr(message, name)
            if repeated:
                if value:
                    value[:] = [self._hashed(v) if v else v for v in value]
            elif value:
                setattr(message, name, self._hashed(value))
        for name in plan.singular:
            if message.HasField(name):
                self._filter(getattr(message, name))
        for oneof, members in plan.oneofs:
            chosen = message.WhichOneof(oneof)
            if chosen in members:
                self._filter(getattr(message, chosen))
        for name in plan.repeated:
            for child in getattr(message, name):
                self._filter(child)
        for name in plan.maps:
            for child in getattr(message, name).values():
                self._filter(child)


def load_or_create_salt(path: Path) -> bytes:
    """The deployment's salt from `path`; 32 fresh random bytes, kept 0600, if it is missing.

    Raises StateError, naming the file, when it cannot be read or written or does not
    hold exactly 32 bytes (a truncated or foreign file would silently change every hash).
    """
    try:
        salt = path.read_bytes()
    except FileNotFoundError:
        salt = _create_salt(path)
    except OSError as err:
        raise StateError(
            f"cannot read the privacy salt {path}: {err.strerror}; "
            "the agent's user must be able to read it"
        ) from err
    if len(salt) != SALT_BYTES:
        raise StateError(
            f"the privacy salt {path} holds {len(salt)} bytes, not {SALT_BYTES}: it is damaged "
            "or not a salt file. Restore it from the deployment's copy; deleting it makes a "
            "new salt, after which this device's hashed serials no longer match its old reports"
        )
    return salt


def _create_salt(path: Path) -> bytes:
    salt = os.urandom(SALT_BYTES)
    # write_private gives a whole 0600 file; linking it into place (not renaming over)
    # means two agents starting at once agree on one salt: the second finds the first's.
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(staged, salt)
        try:
            os.link(staged, path)
        except FileExistsError:
            return path.read_bytes()
        except OSError as err:
            # A file system without hard links: a rename is still atomic, only not exclusive.
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            os.replace(staged, path)
        _fsync_dir(path.parent)
    except OSError as err:
        raise StateError(f"cannot create the privacy salt {path}: {err}") from err
    finally:
        staged.unlink(missing_ok=True)
    return salt


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
