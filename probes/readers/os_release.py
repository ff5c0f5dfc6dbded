"""The operating system's identity from `os-release` (os-release(5)): which distribution runs.

    >>> rel = read_os_release(Path("tests/fixtures/machines/desktop-no-battery/etc"))
    >>> rel.source, rel.pretty_name, rel.get("VERSION_ID")
    ('etc/os-release', 'Debian GNU/Linux 12 (bookworm)', '12')

The format is a list of shell-style `KEY=value` assignments: values may be in single or
double quotes, with backslash escapes as in a shell; lines starting with `#` and blank
lines are ignored; no variable expansion. `_shell_word` unquotes a value the way a POSIX
shell does when a script sources the file (`shlex` does not: inside double quotes it
keeps the backslash before `$` and backtick, which the spec says must be escaped), and
lines a shell could not parse (an unclosed quote, no `=`) are kept in `errors`, never
guessed at.

`etc/os-release` takes precedence; `usr/lib/os-release` is the fallback the spec names.
Both are read relative to the folder that holds `etc_root` (the live `/` or a captured
machine folder) through the hardened reader, so a captured tree's link
`etc/os-release -> ../usr/lib/os-release` is followed but an absolute link out of the
capture is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from probelink.probes.errors import SourceError
from probelink.probes.sysread import SysfsRoot

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class OsRelease:
    """The assignments of one os-release file, unquoted."""

    # Which file was used, relative to the machine root, e.g. "etc/os-release".
    source: str
    values: dict[str, str] = field(default_factory=dict)
    # Lines that are not valid assignments, and files that could not be read.
    errors: list[str] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        """A value, None when the key is absent or empty."""
        return self.values.get(key) or None

    @property
    def pretty_name(self) -> str | None:
        """PRETTY_NAME, else "NAME VERSION", else NAME: what a person calls this system."""
        pretty = self.get("PRETTY_NAME")
        if pretty:
            return pretty
        name, version = self.get("NAME"), self.get("VERSION")
        if name and version:
            return f"{name} {version}"
        return name


# Inside double quotes a POSIX shell lets a backslash escape only these.
_DQUOTE_ESCAPES = frozenset('$`"\\')


def _shell_word(text: str) -> tuple[str, str]:
    """The first shell word of `text`, unquoted, and the rest of the line after it."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            break
        if ch == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
        elif ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("no closing quotation")
            out.append(text[i + 1 : end])
            i = end + 1
        elif ch == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in _DQUOTE_ESCAPES:
                    i += 1
                out.append(text[i])
                i += 1
            if i >= n:
                raise ValueError("no closing quotation")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out), text[i:].strip()


def parse_os_release(text: str, source: str = "os-release") -> OsRelease:
    """Parse the content of an os-release file."""
    values: dict[str, str] = {}
    errors: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            errors.append(f"{source} line {number}: not an assignment: {line[:60]!r}")
            continue
        try:
            value, tail = _shell_word(rest)
        except ValueError as exc:
            errors.append(f"{source} line {number}: {key}: {exc}")
            continue
        # A shell keeps only the first word of an unquoted value (the rest would be a
        # command, or a trailing comment); spaces are only valid inside quotes.
        if tail and not tail.startswith("#"):
            errors.append(
                f"{source} line {number}: {key} has unquoted spaces; "
                f"kept {value!r} as a shell would"
            )
        values[key] = value
    return OsRelease(source=source, values=values, errors=errors)


def read_os_release(etc_root: Path) -> OsRelease | None:
    """The os-release of the machine whose `/etc` is `etc_root`; None when it has none."""
    root = SysfsRoot(etc_root.parent)
    errors: list[str] = []
    for rel in (f"{etc_root.name}/os-release", "usr/lib/os-release"):
        try:
            text = root.read_text(rel)
        except SourceError as exc:
            # An unreadable /etc file is salvaged by the /usr/lib one, but not hidden.
            errors.append(exc.message)
            continue
        if text is None:
            continue
        parsed = parse_os_release(text, rel)
        return OsRelease(parsed.source, parsed.values, errors + parsed.errors)
    if errors:
        return OsRelease(source="", errors=errors)
    return None
