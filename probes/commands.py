"""Running helper programs (smartctl) through one seam with a time budget.

    >>> runner = SubprocessRunner()
    >>> result = runner.run(["smartctl", "--json", "--scan"], timeout_s=5)

A missing program raises MissingUtility, one that runs past its budget is killed and
raises ProbeTimeout; a non-zero exit is *not* an error here, since smartctl encodes
findings in its exit status bits and the caller decides what they mean.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Protocol

from probelink.probes.errors import MissingUtility, ProbeTimeout, Unavailable

# A helper's output beyond this is not diagnostics but a runaway program.
MAX_OUTPUT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


class CommandRunner(Protocol):
    def run(self, argv: list[str], timeout_s: float) -> CommandResult: ...


class SubprocessRunner:
    """Runs real programs, found on `path` (default: the process's PATH)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def which(self, program: str) -> str | None:
        return shutil.which(
            program, path=self.path if self.path is not None else os.environ.get("PATH")
        )

    def run(self, argv: list[str], timeout_s: float) -> CommandResult:
        exe = self.which(argv[0])
        if exe is None:
            raise MissingUtility(f"{argv[0]} is not installed (not found on PATH)", argv[0])
        try:
            proc = subprocess.run(
                [exe, *argv[1:]],
                capture_output=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
                check=False,
                # A new session so a hanging helper and anything it started die together.
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            raise ProbeTimeout(
                f"{argv[0]} did not finish within {timeout_s:g} s and was stopped", argv[0]
            ) from None
        except OSError as exc:
            raise Unavailable(f"{argv[0]} could not be started: {exc.strerror}", argv[0]) from exc
        return CommandResult(
            tuple(argv),
            proc.returncode,
            proc.stdout[:MAX_OUTPUT_BYTES],
            proc.stderr[:MAX_OUTPUT_BYTES],
        )
