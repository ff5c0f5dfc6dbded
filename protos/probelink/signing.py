"""Report signatures, as both sides compute them.

    key = DeviceKey.generate()                       # the agent's, kept 0600 in its state dir
    frame.signature = key.sign(serialized)           # 64 bytes
    verify(public_key, frame.signature, sha256(serialized).digest())   # the server: bool
    key_id(public_key)                               # "SHA256:3f2a…": for people and logs

The signature is Ed25519 over `CONTEXT + SHA-256(serialized report)`:

- it covers the report, not its zstd frame, so a resend compressed with another
  dictionary carries the same signature, and the stored copy can be checked again later
  from the serialized report alone;
- the server already hashes every report for idempotency, so verifying reuses that
  digest instead of hashing 8 KiB again;
- the context string keeps a report signature from ever being valid for another
  message the same key might sign one day (a support-session consent, say).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CONTEXT = b"probelink-report-v1\x00"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
PRIVATE_KEY_BYTES = 32


def signed_message(digest: bytes) -> bytes:
    """What is signed for a report whose serialized bytes hash to `digest` (SHA-256)."""
    if len(digest) != hashlib.sha256().digest_size:
        raise ValueError(f"a report digest is 32 bytes of SHA-256, not {len(digest)} bytes")
    return CONTEXT + digest


def key_id(public_key: bytes) -> str:
    """A short, stable name for a public key: "SHA256:" and 16 hex digits."""
    return "SHA256:" + hashlib.sha256(public_key).hexdigest()[:16]


def check_public_key(public_key: bytes) -> str | None:
    """None if `public_key` is a usable raw Ed25519 public key, else what is wrong."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        return f"an Ed25519 public key is {PUBLIC_KEY_BYTES} raw bytes, not {len(public_key)}"
    try:
        Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as err:
        return f"not an Ed25519 public key: {err}"
    return None


def verify(public_key: bytes, signature: bytes, digest: bytes) -> bool:
    """Whether `signature` is the key's signature of the report hashing to `digest`."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signed_message(digest))
    except (InvalidSignature, ValueError):
        return False
    return True


class DeviceKey:
    """A device's Ed25519 signing key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key: bytes = private_key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> DeviceKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> DeviceKey:
        """The key from its 32 raw private bytes; ValueError if they are not that."""
        if len(raw) != PRIVATE_KEY_BYTES:
            raise ValueError(f"an Ed25519 private key is 32 raw bytes, not {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, serialized: bytes) -> bytes:
        """The signature of a serialized Report (ReportFrame.signature)."""
        return self._key.sign(signed_message(hashlib.sha256(serialized).digest()))

    def sign_digest(self, digest: bytes) -> bytes:
        """The same, for a report whose SHA-256 the caller already has."""
        return self._key.sign(signed_message(digest))
