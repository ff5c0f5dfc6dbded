"""Secrets the server hands out, and the only form in which it keeps them: a hash.

    token = new_secret("plt")        # 'plt_Xy3…' shown once to the person
    record_hash = hash_secret(token) # what the database keeps

The prefix says what a secret is at a glance (and lets the authenticator look in the
right table): `pld_` a device credential, `plt_` a person's API token, `ple_` an enroll
secret. Each carries 256 random bits, so a plain SHA-256 is the right hash: there is
nothing to brute-force, unlike a password, and lookups stay one index probe.
"""

from __future__ import annotations

import hashlib
import secrets

DEVICE_CREDENTIAL = "pld"
API_TOKEN = "plt"
ENROLL_SECRET = "ple"
PREFIXES = (DEVICE_CREDENTIAL, API_TOKEN, ENROLL_SECRET)


def new_secret(prefix: str) -> str:
    """A fresh secret: `<prefix>_<43 url-safe characters>`."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> bytes:
    """The SHA-256 the database keeps instead of `secret`."""
    return hashlib.sha256(secret.strip().encode()).digest()


def kind_of(secret: str) -> str | None:
    """The secret's prefix if it is one of ours, else None."""
    prefix, sep, rest = secret.strip().partition("_")
    if not sep or prefix not in PREFIXES or len(rest) < 16:
        return None
    return prefix


def new_id(prefix: str) -> str:
    """A short public id for a token or secret (safe to print and log): `tok_3f9c2a1b7e40`."""
    return f"{prefix}_{secrets.token_hex(6)}"
