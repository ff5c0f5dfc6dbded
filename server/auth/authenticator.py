"""From a call's metadata to a `Caller`, or a status a person can act on.

    caller = await authenticator.identify(context.invocation_metadata())
    roles.check(caller.role, method)

Lookups are cached for a couple of seconds: a stream re-checks its credential before
every report, and the cache keeps that from costing a database read each time, while a
revocation still takes effect within the TTL on every replica (and at once on the
replica that revoked, which clears its cache). A device's `Caller` carries its registered
public key, so checking each report's signature needs no lookup of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from probelink.server.auth import credentials, roles
from probelink.server.errors import Unauthenticated
from probelink.server.store.async_store import AsyncStore

_METADATA_KEY = "authorization"


@dataclass(frozen=True, slots=True)
class Caller:
    role: str
    # The device id of a device, or the token id of a person.
    subject_id: str
    label: str
    # A device's own id, or the device a customer token is issued for.
    device_id: str | None
    # A device's registered Ed25519 public key (None for people, and for a device that
    # enrolled before keys were kept). Cached with the credential, so verifying a
    # report's signature costs no database read.
    public_key: bytes | None = None

    def may_read(self, device_id: str) -> bool:
        """Whether this caller may read the data of `device_id`."""
        if self.role in roles.STAFF:
            return True
        return self.device_id is not None and self.device_id == device_id

    @property
    def scope(self) -> str | None:
        """The one device this caller is confined to; None for staff."""
        return None if self.role in roles.STAFF else self.device_id


class Authenticator:
    def __init__(self, store: AsyncStore, ttl_s: float = 2.0) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._cache: dict[bytes, tuple[float, Caller | Unauthenticated]] = {}

    def forget(self) -> None:
        """Drop cached identities (after a revocation on this replica)."""
        self._cache.clear()

    async def identify(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Caller:
        """The caller named by the `authorization` metadata; raises Unauthenticated."""
        return await self.identify_secret(_bearer(metadata))

    async def identify_secret(self, secret: str) -> Caller:
        digest = credentials.hash_secret(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            found = hit[1]
        else:
            found = await self._lookup(secret, digest)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl_s, found)
        if isinstance(found, Unauthenticated):
            raise found
        return found

    async def recheck(self, caller: Caller) -> None:
        """Raise Unauthenticated if `caller` (a device) was revoked since it was admitted."""
        if caller.role != roles.DEVICE:
            return
        key = b"device:" + caller.subject_id.encode()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            found = hit[1]
        else:
            device = await self._store.read(self._store.store.get_device, caller.subject_id)
            found = caller
            if device is None or device.revoked_at_us is not None:
                found = Unauthenticated(
                    f"device {caller.subject_id} was revoked; enroll again with a valid "
                    "enroll secret"
                )
            self._cache[key] = (now + self._ttl_s, found)
        if isinstance(found, Unauthenticated):
            raise found

    async def _lookup(self, secret: str, digest: bytes) -> Caller | Unauthenticated:
        kind = credentials.kind_of(secret)
        store = self._store.store
        if kind == credentials.DEVICE_CREDENTIAL:
            device = await self._store.read(store.device_by_credential, digest)
            if device is None:
                return Unauthenticated("this device credential is not known to this server")
            if device.revoked_at_us is not None:
                return Unauthenticated(
                    f"device {device.device_id} was revoked; enroll again with a valid "
                    "enroll secret"
                )
            return Caller(
                roles.DEVICE, device.device_id, device.model, device.device_id, device.public_key
            )
        if kind == credentials.API_TOKEN:
            token = await self._store.read(store.token_by_hash, digest)
            if token is None:
                return Unauthenticated("this token is not known to this server")
            if token.revoked_at_us is not None:
                return Unauthenticated(
                    f"token {token.token_id} was revoked; ask an admin for a new one"
                )
            return Caller(token.role, token.token_id, token.label, token.device_id)
        if kind == credentials.ENROLL_SECRET:
            return Unauthenticated(
                "that is an enroll secret: it only serves to enroll a device "
                "(AgentGatewayService.Enroll); use a device credential or an API token"
            )
        return Unauthenticated(
            "that is not a Probelink credential (expected a token starting with plt_ "
            "or a device credential starting with pld_)"
        )


def _bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    for key, value in metadata or ():
        if key != _METADATA_KEY:
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        scheme, _, secret = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("the authorization metadata must read 'Bearer <token>'")
        return secret.strip()
    raise Unauthenticated(
        "no credential: people pass --token (or set PROBELINK_TOKEN); "
        "devices send the credential they got by enrolling"
    )
