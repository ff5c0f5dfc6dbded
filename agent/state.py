"""The agent's state dir: its signing key, credential, where it enrolled, its dictionary.

    state = AgentState(default_state_dir())      # $PROBELINK_AGENT_STATE, XDG, ~/.local/state
    key = state.device_key()                     # made on first use, then always the same
    state.save_enrollment(Enrollment(device_id, "127.0.0.1:50051"), credential)
    state.credential()                           # "pld_…", or None before enrolling
    state.save_dictionary(7, content)            # dictionary-7.zdict; older ones removed

Files (the dir itself is 0700):

    device.key          the device's Ed25519 signing key (32 raw private bytes), mode
                        0600: it signs every report; the server holds its public half
                        from enrollment. It outlives an enrollment (see forget_enrollment)
    credential          the device credential from Enroll, mode 0600: it is the
                        device's password, the server keeps only its hash
    device.json         {"device_id": …, "server": …} — which device, enrolled where
    dictionary-<id>.zdict  the server's current zstd dictionary, to compress with

Every file is written whole or not at all (a temp file, fsync, rename, fsync of the
dir): a crash or a full disk never leaves half a credential that looks like a whole one.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from probelink.signing import PRIVATE_KEY_BYTES, DeviceKey

STATE_ENV = "PROBELINK_AGENT_STATE"
_KEY = "device.key"
_CREDENTIAL = "credential"
_DEVICE = "device.json"
_DICTIONARY_GLOB = "dictionary-*.zdict"


def default_state_dir(environ: dict[str, str] | None = None) -> Path:
    """$PROBELINK_AGENT_STATE, else $XDG_STATE_HOME/probelink-agent, else ~/.local/state/…"""
    env = os.environ if environ is None else environ
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV]).expanduser()
    xdg = env.get("XDG_STATE_HOME")
    # The XDG spec says a relative path is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "probelink-agent"
    return Path.home() / ".local" / "state" / "probelink-agent"


# Where the packaged systemd unit keeps the daemon's state (StateDirectory=probelink-agent).
SYSTEM_STATE_DIR = Path("/var/lib/probelink-agent")


def daemon_state_dir(environ: dict[str, str] | None = None) -> Path:
    """The state dir a running daemon most likely uses, for commands that read what it keeps
    (`status`, `advisories`): $PROBELINK_AGENT_STATE; else this user's default when it
    exists; else the systemd unit's /var/lib/probelink-agent when this user may read it;
    else this user's default."""
    env = dict(os.environ) if environ is None else environ
    mine = default_state_dir(env)
    if env.get(STATE_ENV) or mine.exists():
        return mine
    if SYSTEM_STATE_DIR.is_dir() and os.access(SYSTEM_STATE_DIR, os.R_OK | os.X_OK):
        return SYSTEM_STATE_DIR
    return mine


class StateError(Exception):
    """The state dir cannot be created, read or written; the message says which file."""


@dataclass(frozen=True)
class Enrollment:
    device_id: str
    # The --server the device enrolled with, to tell the person when they differ.
    server: str


def write_private(path: Path, data: bytes, replace: bool = True) -> None:
    """Write `path` atomically with mode 0600 (temp file + fsync + rename + dir fsync).

    With `replace=False` an existing `path` is left alone and FileExistsError raised:
    the whole file is linked into place, so of two processes creating it at once one
    wins and the other learns it lost (and reads the winner's).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes 0600 already; say so anyway, it is the point of this function.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _link_new(tmp: str, path: Path) -> None:
    """Put `tmp` in place as `path` unless `path` exists (FileExistsError)."""
    try:
        os.link(tmp, path)
    except OSError as err:
        # A file system without hard links: a rename is still atomic, only not exclusive.
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from err
        os.replace(tmp, path)
        return
    os.unlink(tmp)


class AgentState:
    """One device's state in one dir. Methods raise StateError with the path on OS errors."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        """Create the dir (0700) if missing, and check it can be written."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise StateError(f"cannot create the state dir {self.root}: {err.strerror}") from err
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StateError(f"cannot write to the state dir {self.root}")

    @property
    def key_path(self) -> Path:
        return self.root / _KEY

    def device_key(self) -> DeviceKey:
        """The device's signing key: read from device.key, or made (0600) on first use.

        Raises StateError when the dir cannot be written or the file is not a key.
        """
        path = self.key_path
        raw = self._read(path)
        if raw is None:
            self.ensure()
            key = DeviceKey.generate()
            try:
                write_private(path, key.private_bytes(), replace=False)
            except FileExistsError:
                raw = self._read(path)  # another agent process made it first: use theirs
                if raw is None:
                    raise StateError(f"{path} appeared and vanished while it was read") from None
            except OSError as err:
                raise StateError(f"cannot keep the device signing key in {path}: {err}") from err
            else:
                return key
        try:
            return DeviceKey.from_private_bytes(raw)
        except ValueError as err:
            raise StateError(
                f"{path} is not a device signing key ({len(raw)} bytes; it should hold "
                f"{PRIVATE_KEY_BYTES} raw bytes of an Ed25519 private key): it is damaged. "
                "Move it away, then enroll again (--enroll-secret-file): the agent makes "
                "a new key and registers it"
            ) from err

    @property
    def credential_path(self) -> Path:
        return self.root / _CREDENTIAL

    def credential(self) -> str | None:
        """The kept device credential, or None when this device has not enrolled."""
        raw = self._read(self.credential_path)
        if raw is None:
            return None
        return raw.decode("utf-8", "replace").strip() or None

    def enrollment(self) -> Enrollment | None:
        raw = self._read(self.root / _DEVICE)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Enrollment(device_id=str(data["device_id"]), server=str(data["server"]))
        except (ValueError, KeyError, TypeError):
            # A damaged device.json only loses the labels; the credential still works.
            return None

    def save_enrollment(self, enrollment: Enrollment, credential: str) -> None:
        self.ensure()
        try:
            # The credential first: a device.json without it would claim an enrollment.
            write_private(self.credential_path, credential.encode("utf-8") + b"\n")
            write_private(
                self.root / _DEVICE, json.dumps(asdict(enrollment), indent=2).encode() + b"\n"
            )
        except OSError as err:
            raise StateError(f"cannot keep the device credential in {self.root}: {err}") from err

    def forget_enrollment(self, forget_key: bool = False) -> None:
        """Drop the credential and device.json (the server refused them).

        The signing key stays unless `forget_key`: enrolling again registers the same
        key, so what the device signed before stays its own.
        """
        names = (_CREDENTIAL, _DEVICE, _KEY) if forget_key else (_CREDENTIAL, _DEVICE)
        for name in names:
            try:
                (self.root / name).unlink(missing_ok=True)
            except OSError as err:
                raise StateError(f"cannot remove {self.root / name}: {err.strerror}") from err

    def dictionary(self) -> tuple[int, bytes] | None:
        """(id, content) of the kept dictionary, the newest if several, or None."""
        kept: list[tuple[int, Path]] = []
        for path in self.root.glob(_DICTIONARY_GLOB):
            number = path.name.removeprefix("dictionary-").removesuffix(".zdict")
            if number.isdigit():
                kept.append((int(number), path))
        for dictionary_id, path in sorted(kept, reverse=True):
            content = self._read(path)
            if content:
                return dictionary_id, content
        return None

    def save_dictionary(self, dictionary_id: int, content: bytes) -> None:
        """Keep this dictionary and drop any other: the agent compresses with one."""
        self.ensure()
        path = self.root / f"dictionary-{dictionary_id}.zdict"
        try:
            write_private(path, content)
        except OSError as err:
            raise StateError(f"cannot keep the dictionary in {path}: {err}") from err
        self.forget_dictionary(keep=path)

    def forget_dictionary(self, keep: Path | None = None) -> None:
        for path in self.root.glob(_DICTIONARY_GLOB):
            if path != keep:
                path.unlink(missing_ok=True)

    def _read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StateError(f"cannot read {path}: {err.strerror}") from err
