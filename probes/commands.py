"""Running helper programs (smartctl) through one seam with a time budget.

    >>> runner = SubprocessRunner()
    >>> result = runner.run(["smartctl", "--json", "--scan"], timeout_s=5)

A missing program raises MissingUtility; one that runs past its budget is killed,
together with every process it started, and raises ProbeTimeout. A non-zero exit is
*not* an error here, since smartctl encodes findings in its exit status bits and the
caller decides what they mean.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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
            # A new session (and so a new process group) lets a hanging helper and
            # everything it started be killed together: subprocess.run(timeout=) kills
            # only the direct child, and a grandchild holding our pipes would outlive it.
            proc = subprocess.Popen(
                [exe, *argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise Unavailable(f"{argv[0]} could not be started: {exc.strerror}", argv[0]) from exc
        with proc:
            try:
                stdout, stderr = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise ProbeTimeout(
                    f"{argv[0]} did not finish within {timeout_s:g} s and was stopped", argv[0]
                ) from None
            except BaseException:
                # Interrupted (Ctrl-C, a cancelled probe): leave no helper running behind.
                _kill_group(proc)
                raise
        return CommandResult(
            tuple(argv),
            proc.returncode,
            stdout[:MAX_OUTPUT_BYTES],
            stderr[:MAX_OUTPUT_BYTES],
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the helper's whole process group, then reap the helper itself.

    The group id is the helper's pid (start_new_session). Its children are reparented
    and reaped by init; only the direct child is ours to wait for. The pipes are closed
    unread: a process that escaped the group could hold them open for ever.
    """
    # ProcessLookupError: the whole group has already exited.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    proc.wait()
