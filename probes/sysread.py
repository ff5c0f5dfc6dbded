"""The one hardened reader of sysfs attributes; every probe reads through it.

    >>> sys = SysfsRoot(Path("tests/fixtures/machines/laptop-worn-battery/sys"))
    >>> sys.read_int("class/power_supply/BAT0/cycle_count")
    512

Why a reader of its own rather than `Path.read_text`:

- Every path is relative to an injectable root (`--sysfs-root`), so tests and captured
  machines run through the same code as a live `/sys`. Never write the literal `/sys`.
- Symlinks are resolved and must stay inside the root: a captured tree whose link
  points out of it must not read the host's files. A dangling link is absent.
- "Absent" (ENOENT, ENODATA, a dangling link) is `None`, not an error: optional
  attributes are often missing, and that says nothing about the hardware.
- Broken drivers return EAGAIN (some hwmon chips while they convert), EINVAL or EIO;
  EAGAIN is retried a few times, the rest raise AttributeReadError with the errno's
  name and the path, so the probe can keep the error per device.
- Values come with or without a trailing newline, space-padded, or with invalid UTF-8
  in vendor strings: text is stripped and decoded with replacement characters.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

from probelink.probes.errors import AttributeReadError, ParseError

# sysfs attributes are at most a page; reading more would only be a broken file.
MAX_ATTRIBUTE_BYTES = 64 * 1024
EAGAIN_RETRIES = 3
EAGAIN_PAUSE_S = 0.002

ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENODATA, errno.ENOTDIR})

ReadFn = Callable[[Path], bytes]


def _os_read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return os.read(fd, MAX_ATTRIBUTE_BYTES)
    finally:
        os.close(fd)


class SysfsRoot:
    """A sysfs tree under `root` (the live `/sys` or a captured fixture tree).

    `read` is the one seam for the actual file read, so tests can make a read fail
    with the errno a broken driver returns (EAGAIN, EINVAL, EIO, EACCES), which no
    regular file can do.
    """

    def __init__(self, root: Path | str, read: ReadFn = _os_read) -> None:
        self.root = Path(root)
        self._real_root = Path(os.path.realpath(self.root))
        self._read = read

    def __repr__(self) -> str:
        return f"SysfsRoot({str(self.root)!r})"

    def exists(self) -> bool:
        """Whether the root itself is a directory."""
        return self._real_root.is_dir()

    def path(self, rel: str) -> Path:
        """The path of `rel` under the root (not resolved)."""
        return self.root / rel.lstrip("/")

    def resolve(self, rel: str) -> Path | None:
        """The real path of `rel` if it exists inside the root; None when absent or outside."""
        real = Path(os.path.realpath(self.path(rel)))
        if not real.exists() or not real.is_relative_to(self._real_root):
            return None
        return real

    def is_dir(self, rel: str) -> bool:
        real = self.resolve(rel)
        return real is not None and real.is_dir()

    def listdir(self, rel: str) -> list[str]:
        """Sorted entry names of a directory; [] when absent or outside the root."""
        real = self.resolve(rel)
        if real is None or not real.is_dir():
            return []
        try:
            return sorted(os.listdir(real))
        except OSError:
            return []

    def link_name(self, rel: str) -> str | None:
        """The last component of a symlink's target (a driver or subsystem name)."""
        try:
            return os.path.basename(os.readlink(self.path(rel)))
        except OSError:
            return None

    def read_bytes(self, rel: str) -> bytes | None:
        """Raw content of an attribute; None when absent. Raises AttributeReadError."""
        path = self.path(rel)
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self._real_root):
            raise AttributeReadError(
                f"{rel} links outside the sysfs root ({real}); not followed", rel
            )
        for attempt in range(EAGAIN_RETRIES + 1):
            try:
                return self._read(real)
            except OSError as exc:
                if exc.errno in ABSENT_ERRNOS:
                    return None
                if exc.errno == errno.EAGAIN and attempt < EAGAIN_RETRIES:
                    time.sleep(EAGAIN_PAUSE_S)
                    continue
                name = errno.errorcode.get(exc.errno or 0, "error")
                raise AttributeReadError(
                    f"reading {rel} failed: {name} ({exc.strerror})", rel
                ) from exc
        raise AssertionError("unreachable")

    def read_text(self, rel: str) -> str | None:
        """Stripped text; None when absent. An empty file reads as None too."""
        raw = self.read_bytes(rel)
        if raw is None:
            return None
        text = raw.decode("utf-8", errors="replace").replace("\x00", "").strip()
        return text or None

    def read_int(self, rel: str, base: int = 10) -> int | None:
        """An integer attribute; None when absent or empty. Raises ParseError."""
        text = self.read_text(rel)
        if text is None:
            return None
        try:
            return int(text, base)
        except ValueError:
            raise ParseError(f"{rel}: expected an integer, read {text[:40]!r}", rel) from None

    def read_float(self, rel: str) -> float | None:
        """A decimal attribute (USB "speed" 1.5, "version" " 2.00"); None when absent."""
        text = self.read_text(rel)
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            raise ParseError(f"{rel}: expected a number, read {text[:40]!r}", rel) from None

    def read_selected(self, rel: str) -> str | None:
        """The active choice of a list attribute, e.g. "host [device]" -> "device"."""
        text = self.read_text(rel)
        if text is None:
            return None
        for word in text.split():
            if word.startswith("[") and word.endswith("]"):
                return word[1:-1]
        return text
