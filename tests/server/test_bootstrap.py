"""First start: the admin token and enroll secret, written once, and never lost to a crash."""

from __future__ import annotations

import stat
from pathlib import Path

from probelink.server.auth import credentials
from probelink.server.bootstrap import ADMIN_TOKEN_FILE, ENROLL_SECRET_FILE, bootstrap
from probelink.server.store import EnrollSecretRecord, Store, TokenRecord


def test_the_first_start_writes_both_secrets_and_later_starts_nothing(
    store: Store, tmp_path: Path
) -> None:
    written = bootstrap(store, tmp_path)
    assert written == [tmp_path / ADMIN_TOKEN_FILE, tmp_path / ENROLL_SECRET_FILE]
    token = (tmp_path / ADMIN_TOKEN_FILE).read_text().strip()
    secret = (tmp_path / ENROLL_SECRET_FILE).read_text().strip()
    admin = store.token_by_hash(credentials.hash_secret(token))
    assert admin is not None and admin.role == "admin"
    assert store.enroll_secret_by_hash(credentials.hash_secret(secret)) is not None
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bootstrap(store, tmp_path) == []
    assert (tmp_path / ADMIN_TOKEN_FILE).read_text().strip() == token
    assert not list(tmp_path.glob("*.new"))  # no drafts left behind


def test_a_crash_between_commit_and_rename_is_recovered(store: Store, tmp_path: Path) -> None:
    # As bootstrap() leaves things when the process dies right after the commit: the
    # database holds both secrets, the data dir only their drafts.
    token = credentials.new_secret(credentials.API_TOKEN)
    secret = credentials.new_secret(credentials.ENROLL_SECRET)
    assert store.bootstrap(
        TokenRecord("tok_1", credentials.hash_secret(token), "admin", "first", None, 1),
        EnrollSecretRecord("sec_1", credentials.hash_secret(secret), "default", 1),
    )
    (tmp_path / (ADMIN_TOKEN_FILE + ".new")).write_text(token + "\n")
    (tmp_path / (ENROLL_SECRET_FILE + ".new")).write_text(secret + "\n")
    assert bootstrap(store, tmp_path) == [
        tmp_path / ADMIN_TOKEN_FILE,
        tmp_path / ENROLL_SECRET_FILE,
    ]
    assert (tmp_path / ADMIN_TOKEN_FILE).read_text().strip() == token
    assert (tmp_path / ENROLL_SECRET_FILE).read_text().strip() == secret


def test_a_draft_the_database_does_not_know_is_not_installed(store: Store, tmp_path: Path) -> None:
    bootstrap(store, tmp_path / "first")
    stranger = tmp_path / "data"
    stranger.mkdir()
    (stranger / (ADMIN_TOKEN_FILE + ".new")).write_text("plt_" + "x" * 43 + "\n")
    assert bootstrap(store, stranger) == []
    assert not (stranger / ADMIN_TOKEN_FILE).exists()
