"""Tokens, enroll secrets, devices and the first-start bootstrap, on both backends."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from probelink.server.errors import StoreError
from probelink.server.store import DeviceRecord, EnrollSecretRecord, Store, TokenRecord


def h(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def token(
    token_id: str, role: str = "technician", at: int = 1, device: str | None = None
) -> TokenRecord:
    return TokenRecord(token_id, h(token_id), role, f"label {token_id}", device, at)


def secret(secret_id: str, at: int = 1) -> EnrollSecretRecord:
    return EnrollSecretRecord(secret_id, h(secret_id), f"label {secret_id}", at)


def device(device_id: str, at: int = 1) -> DeviceRecord:
    key = h(f"public key of {device_id}")  # 32 bytes, as a raw Ed25519 public key
    return DeviceRecord(device_id, h(device_id), "s1", "Acme", "Tab 10", "0.1.0", at, None, key)


def test_tokens_add_find_by_hash_list_and_revoke(store: Store) -> None:
    customer = token("t2", role="customer", at=2, device="d1")
    admin = token("t1", role="admin", at=1)
    store.add_token(customer)
    store.add_token(admin)
    assert store.token_by_hash(h("t2")) == customer
    assert store.token_by_hash(h("nope")) is None
    assert store.list_tokens() == [admin, customer]

    revoked = dataclasses.replace(customer, revoked_at_us=50)
    assert store.revoke_token("t2", at_us=50) == revoked
    # Revoking again keeps the first time.
    assert store.revoke_token("t2", at_us=99) == revoked
    assert store.token_by_hash(h("t2")) == revoked
    assert store.revoke_token("unknown", at_us=50) is None
    assert store.list_tokens() == [admin, revoked]


def test_a_token_id_or_hash_taken_is_refused(store: Store) -> None:
    store.add_token(token("t1"))
    same_id = TokenRecord("t1", h("other"), "admin", "x", None, 5)
    same_hash = TokenRecord("t9", h("t1"), "admin", "x", None, 5)
    for taken in (same_id, same_hash):
        with pytest.raises(StoreError, match="exists already"):
            store.add_token(taken)
    assert store.list_tokens() == [token("t1")]


def test_a_token_with_an_unknown_role_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        store.add_token(token("t1", role="wizard"))
    assert store.list_tokens() == []


def test_enroll_secrets_add_find_by_hash_list_and_revoke(store: Store) -> None:
    s1, s2 = secret("s1", at=1), secret("s2", at=2)
    store.add_enroll_secret(s2)
    store.add_enroll_secret(s1)
    assert store.enroll_secret_by_hash(h("s1")) == s1
    assert store.enroll_secret_by_hash(h("nope")) is None
    assert store.list_enroll_secrets() == [s1, s2]
    revoked = dataclasses.replace(s1, revoked_at_us=7)
    assert store.revoke_enroll_secret("s1", at_us=7) == revoked
    assert store.revoke_enroll_secret("s1", at_us=8) == revoked
    assert store.revoke_enroll_secret("unknown", at_us=7) is None
    assert store.list_enroll_secrets() == [revoked, s2]
    with pytest.raises(StoreError, match="exists already"):
        store.add_enroll_secret(secret("s1", at=3))


def test_devices_add_find_list_and_revoke(store: Store) -> None:
    d1, d2 = device("d1", at=1), device("d2", at=2)
    store.add_device(d2)
    store.add_device(d1)
    assert store.device_by_credential(h("d1")) == d1
    assert store.device_by_credential(h("nope")) is None
    assert store.get_device("d2") == d2
    assert store.get_device("nope") is None
    assert store.list_devices() == [d1, d2]
    revoked = dataclasses.replace(d2, revoked_at_us=9)
    assert store.revoke_device("d2", at_us=9) == revoked
    assert store.revoke_device("d2", at_us=10) == revoked
    assert store.revoke_device("unknown", at_us=9) is None
    assert store.device_by_credential(h("d2")) == revoked
    with pytest.raises(StoreError, match="enrolled already"):
        store.add_device(device("d1", at=5))
    assert store.list_devices() == [d1, revoked]


def test_bootstrap_happens_once(store: Store) -> None:
    admin, default = token("admin", role="admin"), secret("default")
    assert store.bootstrap(admin, default) is True
    assert store.bootstrap(token("admin2", role="admin"), secret("default2")) is False
    assert store.list_tokens() == [admin]
    assert store.list_enroll_secrets() == [default]


def test_a_bootstrap_that_fails_leaves_no_claim(store: Store) -> None:
    # The token's id is taken, so the whole bootstrap (claim included) is rolled back.
    store.add_token(token("admin"))
    with pytest.raises(StoreError, match="exists already"):
        store.bootstrap(token("admin", role="admin"), secret("default"))
    assert store.list_enroll_secrets() == []
    assert store.bootstrap(token("admin-2", role="admin"), secret("default")) is True


def test_a_device_without_a_key_reads_back_without_one(store: Store) -> None:
    # As enrolled before the server kept keys (migration 2 adds the column, NULL).
    legacy = dataclasses.replace(device("d1"), public_key=None)
    store.add_device(legacy)
    assert store.get_device("d1") == legacy
    assert store.device_by_credential(h("d1")) == legacy
