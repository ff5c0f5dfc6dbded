"""Report signatures: both implementations agree byte for byte, and verify refuses forgeries."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probelink import signing
from probelink.signing import (
    CONTEXT,
    DeviceKey,
    check_public_key,
    key_id,
    signed_message,
    verify,
    verify_with_cryptography,
)

keys = st.binary(min_size=32, max_size=32)


def verify_with_libcrypto(public_key: bytes, signature: bytes, digest: bytes) -> bool:
    """The libcrypto verifier, which servers without libsodium use."""
    lib = signing._libcrypto()
    assert lib is not None
    return signing._libcrypto_verify(lib, public_key, signature, signed_message(digest))


def test_the_server_verifies_with_libsodium_here() -> None:
    # .ci/run installs libsodium23: the bench figures assume it.
    assert signing._libsodium() is not None


reports = st.binary(max_size=4096)


@settings(max_examples=200, deadline=None)
@given(private=keys, serialized=reports)
def test_libcrypto_and_cryptography_sign_identically(private: bytes, serialized: bytes) -> None:
    light = DeviceKey(private)
    reference = DeviceKey(private, use_libcrypto=False)
    assert light.backend == "libcrypto"
    assert reference.backend == "cryptography"
    assert light.public_key == reference.public_key
    signature = light.sign(serialized)
    assert signature == reference.sign(serialized)
    digest = hashlib.sha256(serialized).digest()
    assert verify(light.public_key, signature, digest)


@settings(max_examples=100, deadline=None)
@given(private=keys, serialized=reports, flip=st.integers(min_value=0))
def test_any_changed_bit_fails(private: bytes, serialized: bytes, flip: int) -> None:
    key = DeviceKey(private)
    signature = key.sign(serialized)
    digest = hashlib.sha256(serialized).digest()
    bit = flip % (64 * 8)
    forged = bytearray(signature)
    forged[bit // 8] ^= 1 << (bit % 8)
    assert not verify(key.public_key, bytes(forged), digest)
    for check in (verify_with_cryptography, verify_with_libcrypto):
        assert not check(key.public_key, bytes(forged), digest)
        assert check(key.public_key, signature, digest)
    if serialized:
        tampered = bytearray(serialized)
        tampered[flip % len(serialized)] ^= 0x01
        assert not verify(key.public_key, signature, hashlib.sha256(bytes(tampered)).digest())


def test_another_key_truncation_and_garbage_fail() -> None:
    key, other = DeviceKey.generate(), DeviceKey.generate()
    digest = hashlib.sha256(b"report").digest()
    signature = key.sign(b"report")
    assert verify(key.public_key, signature, digest)
    assert not verify(other.public_key, signature, digest)
    assert not verify(key.public_key, signature[:63], digest)
    assert not verify(key.public_key, b"", digest)
    assert not verify(b"\x00" * 31, signature, digest)
    # Not a point on the curve: both implementations refuse it the same way.
    for bad_key in (b"\xff" * 32, b"\x00" * 32, other.public_key[:-1] + b"\x80"):
        verdicts = {
            check(bad_key, signature, digest)
            for check in (verify, verify_with_cryptography, verify_with_libcrypto)
        }
        assert verdicts == {False}
    # The context string is part of what is signed: a bare digest signature is not valid.
    assert not verify(key.public_key, key._signer.sign(digest), digest)


def test_names_and_checks() -> None:
    key = DeviceKey(bytes(range(32)))
    assert key.key_id == key_id(key.public_key)
    assert key.key_id.startswith("SHA256:")
    assert len(key.key_id) == len("SHA256:") + 16
    assert key.key_id == "SHA256:" + hashlib.sha256(key.public_key).hexdigest()[:16]
    assert check_public_key(key.public_key) is None
    assert "32 raw bytes, not 31" in str(check_public_key(key.public_key[:31]))
    assert signed_message(b"\x01" * 32) == CONTEXT + b"\x01" * 32
    assert CONTEXT == b"probelink-report-v1\x00"


def test_bad_keys_and_digests_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="32 raw bytes, not 31"):
        DeviceKey(b"\x00" * 31)
    with pytest.raises(ValueError, match="32 raw bytes, not 33"):
        DeviceKey.from_private_bytes(b"\x00" * 33)
    with pytest.raises(ValueError, match="32 bytes of SHA-256, not 5"):
        signed_message(b"short")


P = 2**255 - 19
# Encodings of points of small order: the identity (y = 1), order 2 (y = -1), order 4
# (y = 0, both signs of x).
SMALL_ORDER = [
    (1).to_bytes(32, "little"),
    (P - 1).to_bytes(32, "little"),
    (0).to_bytes(32, "little"),
    ((1 << 255) | 0).to_bytes(32, "little"),
]


@pytest.mark.parametrize("weak", SMALL_ORDER)
def test_weak_keys_that_would_let_anyone_forge_are_refused(weak: bytes) -> None:
    assert "weak Ed25519 public key" in str(check_public_key(weak))
    digest = hashlib.sha256(b"any report at all").digest()
    forged = (1).to_bytes(32, "little") + bytes(32)  # R = identity, S = 0
    if weak == SMALL_ORDER[0]:
        # Why enrollment refuses them: the reference implementation accepts the forgery.
        assert verify_with_cryptography(weak, forged, digest)
    assert not verify(weak, forged, digest)


def test_real_keys_pass_the_point_check() -> None:
    for _ in range(200):
        assert check_public_key(DeviceKey.generate().public_key) is None
    assert "not a point on the curve" in str(check_public_key(b"\xff" * 32))
