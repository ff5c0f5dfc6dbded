"""Attributes that could not be read or made no sense, kept per device beside the data.

A reader never lets one bad attribute end the whole read: it reads each attribute through
a `Problems`, which hands back the value, or None and keeps the failure. The device's
record carries them in its `errors`, and the probe decides what they mean.

    >>> problems = Problems()
    >>> problems.read(sysfs.read_int, "class/power_supply/BAT0/cycle_count")   # holds "many"
    >>> problems.read(sysfs.read_int, "class/power_supply/BAT0/capacity")
    87
    >>> problems.items
    [ReadProblem(source='class/power_supply/BAT0/cycle_count', kind='parse',
                 message="class/power_supply/BAT0/cycle_count: expected an integer, read 'many'")]
    >>> first_error(problems.items)        # what a probe hands to `results.errored`
    ParseError("class/power_supply/BAT0/cycle_count: expected an integer, read 'many'")

A missing attribute is not a problem: the read returns None and nothing is kept. Only a
`SourceError` (from `SysfsRoot`: AttributeReadError, ParseError) is kept; any other
exception is a bug and is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from probelink.probes.errors import AttributeReadError, ParseError, SourceError

T = TypeVar("T")

# "file_read": the file could not be read (EIO, EACCES, a link out of the root);
# "parse": it was read, but its content made no sense. As ProbeErrorKind FILE_READ/PARSE.
ProblemKind = Literal["file_read", "parse"]


@dataclass(frozen=True)
class ReadProblem:
    """One attribute that could not be read or made no sense.

    A plain record rather than the exception, so readers' results compare equal in tests
    and can be held in frozen dataclasses.
    """

    source: str  # the attribute, relative to the root: "class/hwmon/hwmon2/temp1_input"
    kind: ProblemKind
    message: str  # the exception's message, as a person would read it

    @classmethod
    def of(cls, exc: SourceError) -> ReadProblem:
        kind: ProblemKind = "parse" if isinstance(exc, ParseError) else "file_read"
        return cls(exc.source, kind, exc.message)

    def to_error(self) -> SourceError:
        """The typed exception this problem stands for (for `results.errored`)."""
        if self.kind == "parse":
            return ParseError(self.message, self.source)
        return AttributeReadError(self.message, self.source)


class Problems:
    """Runs the attribute reads of one device and keeps their failures instead of raising."""

    def __init__(self) -> None:
        self.items: list[ReadProblem] = []

    def read(self, read: Callable[[str], T | None], rel: str) -> T | None:
        """`read(rel)`, or None with the problem kept when the read fails."""
        try:
            return read(rel)
        except SourceError as exc:
            # A reader's own parser may raise without a source: the path read is the source.
            self.items.append(replace(ReadProblem.of(exc), source=exc.source or rel))
            return None


def first_error(problems: Sequence[ReadProblem]) -> SourceError:
    """The first problem as the exception a probe turns into an ERROR result, counting the rest."""
    first = problems[0]
    extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return replace(first, message=first.message + extra).to_error()
