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

Both sides go through C libraries via ctypes (`PyDLL`, so each call keeps the GIL):
signing through OpenSSL's libcrypto, which Python's own `hashlib` has already loaded;
verifying through libsodium where the system has it (49 µs a signature, against 114
for libcrypto's Ed25519 on the same machine), else libcrypto. The agent avoids importing
`cryptography`, which would add 7 MiB of resident memory to a daemon whose whole budget
is 45 MiB. The server avoids `cryptography` releasing the GIL inside every verify: on
a busy server the event loop then waits for the store's threads to hand it back, which
measured three times the cost of the verification itself. The `cryptography` package
stays as the reference and the fallback where libcrypto lacks Ed25519 (OpenSSL < 1.1.1)
or cannot be found; Ed25519 is deterministic, so both give the same signature byte for
byte and the same verdict (tests/test_signing.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path
from typing import Protocol

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
    """None if `public_key` is a usable raw Ed25519 public key, else what is wrong.

    Beyond its length, the key must be a canonical encoding of a point on the curve
    whose order is not small. A small-order key (the identity point, say) makes the
    signature (R = identity, S = 0) valid for every message under OpenSSL and
    `cryptography`: anyone could forge that device's reports. libsodium refuses such
    keys when verifying; the server refuses them at enrollment so that no verifier
    ever meets one.
    """
    if len(public_key) != PUBLIC_KEY_BYTES:
        return f"an Ed25519 public key is {PUBLIC_KEY_BYTES} raw bytes, not {len(public_key)}"
    point = _decode_point(public_key)
    if point is None:
        return "not an Ed25519 public key: the bytes are not a point on the curve"
    for _ in range(3):
        point = _add(point, point)
    if point == (0, 1):
        return "a weak Ed25519 public key (a point of small order): generate a real key"
    return None


_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decode_point(raw: bytes) -> tuple[int, int] | None:
    """(x, y) of an encoded Edwards point (RFC 8032, 5.1.3), None if it is not one."""
    y = int.from_bytes(raw, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if v * x * x % _P == (-u) % _P:
        x = x * _SQRT_M1 % _P
    if v * x * x % _P != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Edwards addition on -x² + y² = 1 + d·x²·y² (complete: no special cases)."""
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, _P - 2, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P
    return x3, y3


def verify(public_key: bytes, signature: bytes, digest: bytes) -> bool:
    """Whether `signature` is the key's signature of the report hashing to `digest`."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    sodium = _libsodium()
    if sodium is not None:
        message = signed_message(digest)
        return bool(
            sodium.crypto_sign_verify_detached(signature, message, len(message), public_key) == 0
        )
    lib = _libcrypto()
    if lib is not None:
        return _libcrypto_verify(lib, public_key, signature, signed_message(digest))
    return verify_with_cryptography(public_key, signature, digest)


def verify_with_cryptography(public_key: bytes, signature: bytes, digest: bytes) -> bool:
    """`verify` through the `cryptography` package (the reference; also the fallback)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signed_message(digest))
    except (InvalidSignature, ValueError):
        return False
    return True


# Parsed public keys by their bytes: a server verifies the same devices again and again.
_PUBLIC_KEYS: dict[bytes, int] = {}
_PUBLIC_KEYS_KEPT = 4096


def _libcrypto_verify(
    lib: ctypes.CDLL, public_key: bytes, signature: bytes, message: bytes
) -> bool:
    pkey = _PUBLIC_KEYS.get(public_key)
    if pkey is None:
        pkey = lib.EVP_PKEY_new_raw_public_key(_NID_ED25519, None, public_key, PUBLIC_KEY_BYTES)
        if not pkey:
            return False
        if len(_PUBLIC_KEYS) >= _PUBLIC_KEYS_KEPT:
            lib.EVP_PKEY_free(_PUBLIC_KEYS.pop(next(iter(_PUBLIC_KEYS))))
        _PUBLIC_KEYS[public_key] = pkey
    ctx = lib.EVP_MD_CTX_new()
    if not ctx:
        raise MemoryError("EVP_MD_CTX_new failed")
    try:
        if lib.EVP_DigestVerifyInit(ctx, None, None, None, pkey) != 1:
            return False
        ok = lib.EVP_DigestVerify(ctx, signature, SIGNATURE_BYTES, message, len(message))
        return bool(ok == 1)
    finally:
        lib.EVP_MD_CTX_free(ctx)


class _Signer(Protocol):
    public_key: bytes

    def sign(self, message: bytes) -> bytes: ...


class DeviceKey:
    """A device's Ed25519 signing key."""

    def __init__(self, private_bytes: bytes, use_libcrypto: bool = True) -> None:
        if len(private_bytes) != PRIVATE_KEY_BYTES:
            raise ValueError(
                f"an Ed25519 private key is {PRIVATE_KEY_BYTES} raw bytes, not {len(private_bytes)}"
            )
        self._private = bytes(private_bytes)
        lib = _libcrypto() if use_libcrypto else None
        self._signer: _Signer = (
            _LibcryptoSigner(lib, self._private) if lib else _CryptographySigner(self._private)
        )
        self.public_key: bytes = self._signer.public_key

    @classmethod
    def generate(cls) -> DeviceKey:
        # An Ed25519 private key is 32 uniformly random bytes (RFC 8032, 5.1.5).
        return cls(os.urandom(PRIVATE_KEY_BYTES))

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> DeviceKey:
        """The key from its 32 raw private bytes; ValueError if they are not that."""
        return cls(raw)

    def private_bytes(self) -> bytes:
        return self._private

    @property
    def backend(self) -> str:
        """ "libcrypto" or "cryptography": which implementation signs."""
        return "libcrypto" if isinstance(self._signer, _LibcryptoSigner) else "cryptography"

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, serialized: bytes) -> bytes:
        """The signature of a serialized Report (ReportFrame.signature)."""
        return self._signer.sign(signed_message(hashlib.sha256(serialized).digest()))


class _CryptographySigner:
    def __init__(self, private_bytes: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._key = Ed25519PrivateKey.from_private_bytes(private_bytes)
        self.public_key = self._key.public_key().public_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


# OpenSSL's NID for Ed25519 (obj_mac.h), stable since 1.1.1.
_NID_ED25519 = 1087
_LIBCRYPTO: list[ctypes.CDLL | None] = []


def _libcrypto() -> ctypes.CDLL | None:
    """OpenSSL's libcrypto with Ed25519, as already loaded by hashlib; None if absent."""
    if not _LIBCRYPTO:
        _LIBCRYPTO.append(_load_libcrypto())
    return _LIBCRYPTO[0]


_LIBSODIUM: list[ctypes.CDLL | None] = []


def _libsodium() -> ctypes.CDLL | None:
    """libsodium, when the system has it: it verifies in 49 µs where libcrypto takes 114."""
    if not _LIBSODIUM:
        _LIBSODIUM.append(_load_libsodium())
    return _LIBSODIUM[0]


def _load_libsodium() -> ctypes.CDLL | None:
    for name in ("libsodium.so.23", "libsodium.so.26", "libsodium.so"):
        try:
            lib = ctypes.PyDLL(name)
            if lib.sodium_init() < 0:
                continue
        except (OSError, AttributeError):
            continue
        p, c_ulonglong = ctypes.c_char_p, ctypes.c_ulonglong
        lib.crypto_sign_verify_detached.argtypes = [p, p, c_ulonglong, p]
        lib.crypto_sign_verify_detached.restype = ctypes.c_int
        return lib
    return None


def _load_libcrypto() -> ctypes.CDLL | None:
    candidates: list[str] = []
    try:
        # The copy hashlib loaded: no second library, no extra memory.
        for line in Path("/proc/self/maps").read_text().splitlines():
            path = line.split(maxsplit=5)[-1]
            if "/libcrypto.so" in path and path not in candidates:
                candidates.append(path)
    except OSError:
        pass
    candidates += ["libcrypto.so.3", "libcrypto.so.1.1"]
    for name in candidates:
        try:
            # PyDLL: the calls keep the GIL. They take tens of microseconds; releasing
            # and taking back the GIL around each one costs a busy server more than that
            # (its event loop then waits for the store's threads to hand the GIL back).
            lib = ctypes.PyDLL(name)
            _declare(lib)
        except (OSError, AttributeError):
            continue
        return lib
    return None


def _declare(lib: ctypes.CDLL) -> None:
    p, size, c_int = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    lib.EVP_PKEY_new_raw_private_key.argtypes = [c_int, p, ctypes.c_char_p, size]
    lib.EVP_PKEY_new_raw_private_key.restype = p
    lib.EVP_PKEY_get_raw_public_key.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(size)]
    lib.EVP_PKEY_get_raw_public_key.restype = c_int
    lib.EVP_PKEY_free.argtypes = [p]
    lib.EVP_PKEY_free.restype = None
    lib.EVP_MD_CTX_new.argtypes = []
    lib.EVP_MD_CTX_new.restype = p
    lib.EVP_MD_CTX_free.argtypes = [p]
    lib.EVP_MD_CTX_free.restype = None
    lib.EVP_DigestSignInit.argtypes = [p, p, p, p, p]
    lib.EVP_DigestSignInit.restype = c_int
    lib.EVP_DigestSign.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(size), ctypes.c_char_p, size]
    lib.EVP_DigestSign.restype = c_int
    lib.EVP_PKEY_new_raw_public_key.argtypes = [c_int, p, ctypes.c_char_p, size]
    lib.EVP_PKEY_new_raw_public_key.restype = p
    lib.EVP_DigestVerifyInit.argtypes = [p, p, p, p, p]
    lib.EVP_DigestVerifyInit.restype = c_int
    lib.EVP_DigestVerify.argtypes = [p, ctypes.c_char_p, size, ctypes.c_char_p, size]
    lib.EVP_DigestVerify.restype = c_int


class _LibcryptoSigner:
    def __init__(self, lib: ctypes.CDLL, private_bytes: bytes) -> None:
        self._lib = lib
        self._pkey = lib.EVP_PKEY_new_raw_private_key(
            _NID_ED25519, None, private_bytes, PRIVATE_KEY_BYTES
        )
        if not self._pkey:
            raise ValueError("libcrypto refused the Ed25519 private key")
        out = ctypes.create_string_buffer(PUBLIC_KEY_BYTES)
        length = ctypes.c_size_t(PUBLIC_KEY_BYTES)
        if lib.EVP_PKEY_get_raw_public_key(self._pkey, out, ctypes.byref(length)) != 1:
            raise ValueError("libcrypto could not derive the Ed25519 public key")
        self.public_key = out.raw[: length.value]

    def sign(self, message: bytes) -> bytes:
        lib = self._lib
        ctx = lib.EVP_MD_CTX_new()
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new failed")
        try:
            # Ed25519 hashes internally: no digest is named (NULL).
            if lib.EVP_DigestSignInit(ctx, None, None, None, self._pkey) != 1:
                raise RuntimeError("EVP_DigestSignInit failed for Ed25519")
            out = ctypes.create_string_buffer(SIGNATURE_BYTES)
            length = ctypes.c_size_t(SIGNATURE_BYTES)
            if lib.EVP_DigestSign(ctx, out, ctypes.byref(length), message, len(message)) != 1:
                raise RuntimeError("EVP_DigestSign failed for Ed25519")
            return out.raw[: length.value]
        finally:
            lib.EVP_MD_CTX_free(ctx)

    def __del__(self) -> None:
        pkey, self._pkey = getattr(self, "_pkey", None), None
        if pkey:
            self._lib.EVP_PKEY_free(pkey)
