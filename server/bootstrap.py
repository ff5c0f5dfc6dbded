"""First start: an admin token and a default enroll secret, written where the operator looks.

    written = bootstrap(store, Path("probelink-data"))
    # -> [data_dir/admin.token, data_dir/enroll.secret] on the very first start, else []

The files are written (mode 0600) as drafts before the database learns the secrets and
renamed into place only after it committed: a file never names a secret the server
does not know, and a draft left by a crash after the commit is renamed into place on the
next start (its secret is checked against the database first). With several replicas on one
PostgreSQL, exactly one bootstraps; the others write nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from probelink.server.auth import credentials, roles
from probelink.server.clock import now_us
from probelink.server.store.base import EnrollSecretRecord, Store, TokenRecord

ADMIN_TOKEN_FILE = "admin.token"
ENROLL_SECRET_FILE = "enroll.secret"


def bootstrap(store: Store, data_dir: Path) -> list[Path]:
    """Create the first admin token and enroll secret if the database has none yet.

    The paths written: both files on the first start, or those recovered from drafts a
    crash left between the commit and the rename; else none.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    recovered = _recover_drafts(store, data_dir)
    if recovered:
        return recovered
    token = credentials.new_secret(credentials.API_TOKEN)
    secret = credentials.new_secret(credentials.ENROLL_SECRET)
    now = now_us()
    admin = TokenRecord(
        token_id=credentials.new_id("tok"),
        token_hash=credentials.hash_secret(token),
        role=roles.ADMIN,
        label="first admin (written to admin.token)",
        device_id=None,
        created_at_us=now,
    )
    enroll = EnrollSecretRecord(
        secret_id=credentials.new_id("sec"),
        secret_hash=credentials.hash_secret(secret),
        label="default (written to enroll.secret)",
        created_at_us=now,
    )
    targets = [(data_dir / ADMIN_TOKEN_FILE, token), (data_dir / ENROLL_SECRET_FILE, secret)]
    drafts = [
        (_write_private(path.with_suffix(path.suffix + ".new"), text), path)
        for path, text in targets
    ]
    try:
        created = store.bootstrap(admin, enroll)
    except BaseException:
        for draft, _ in drafts:
            draft.unlink(missing_ok=True)
        raise
    if not created:
        for draft, _ in drafts:
            draft.unlink(missing_ok=True)
        return []
    for draft, path in drafts:
        os.replace(draft, path)
    return [path for _, path in drafts]


def _recover_drafts(store: Store, data_dir: Path) -> list[Path]:
    """Rename into place a draft whose secret the database holds: the crash came after
    the commit, so the draft is the only copy of a live secret."""
    recovered = []
    lookups = (
        (ADMIN_TOKEN_FILE, store.token_by_hash),
        (ENROLL_SECRET_FILE, store.enroll_secret_by_hash),
    )
    for name, lookup in lookups:
        path = data_dir / name
        draft = path.with_suffix(path.suffix + ".new")
        if path.exists() or not draft.exists():
            continue
        text = draft.read_text().strip()
        if text and lookup(credentials.hash_secret(text)) is not None:
            os.replace(draft, path)
            recovered.append(path)
    return recovered


def _write_private(path: Path, text: str) -> Path:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path
