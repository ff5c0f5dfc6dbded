"""What a probe reads the machine through: every source behind an injectable root or seam.

    >>> ctx = ProbeContext.for_machine()                      # the live machine
    >>> ctx = ProbeContext.for_machine(Path("tests/fixtures/machines/laptop-worn-battery/sys"))

A captured machine is a folder holding `sys/` and, optionally, `psutil/` (what
psutil returned there, see `psutil_source`), `smartctl/*.json` (its drives' `smartctl
--json -x` outputs), `proc/` (cpuinfo, sys/kernel/*), `dev/` (device nodes' names) and
`etc/os-release`. When the
sysfs root is such a capture, the other sources come from beside it, never from the
live machine: a report must describe one machine, not a blend of two.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probelink.probes.commands import CommandRunner, SubprocessRunner
from probelink.probes.psutil_source import PsutilSnapshot, PsutilSource, live
from probelink.probes.sysread import SysfsRoot

LIVE_SYSFS = Path("/sys")
LIVE_DEVFS = Path("/dev")
LIVE_ETC = Path("/etc")
LIVE_PROCFS = Path("/proc")

# Stands for the live psutil module in a pickled context (a module cannot be pickled).
_LIVE_PSUTIL = "live"

# Asked when a routine waits for a person: (code, question) -> did they do it?
InquiryHandler = Callable[[str, str], bool]


def _nobody_to_ask(code: str, question: str) -> bool:
    return False


@dataclass
class ProbeContext:
    """Every source a probe may use. Probes never reach the machine any other way."""

    sysfs: SysfsRoot
    # procfs (cpuinfo, sys/kernel/*) through the same hardened reader.
    procfs: SysfsRoot = field(default_factory=lambda: SysfsRoot(LIVE_PROCFS))
    devfs_root: Path = LIVE_DEVFS
    etc_root: Path = LIVE_ETC
    commands: CommandRunner = field(default_factory=SubprocessRunner)
    # None: psutil is not installed, or a captured machine has no snapshot of it.
    psutil: PsutilSource | None = None
    psutil_missing_reason: str = ""
    # pyudev.Context, made on first use (loading libudev costs start-up time most
    # commands do not need); None on a captured machine, where probes read sysfs.
    udev_factory: Callable[[], Any] | None = None
    # Captured `smartctl --json` outputs to judge instead of running smartctl.
    smartctl_json: list[Path] = field(default_factory=list)
    smartctl_program: str = "smartctl"
    # Budget of one telemetry probe, seconds; helpers get a share of it.
    timeout_s: float = 5.0
    ask: InquiryHandler = _nobody_to_ask
    # Routine targets chosen by the person: a serial port with a loopback plug,
    # a file or device to read for the storage read-speed routine.
    serial_port: str | None = None
    read_target: Path | None = None
    # A captured tree that a bench or a test changes while routines run (a simulated
    # device), so routines that watch the machine may run against it.
    simulated: bool = False
    # Overrides of probe limits by name, e.g. {"battery.min_health_pct": 75}.
    limits: dict[str, float] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        """Whether this context reads the machine it runs on."""
        return self.sysfs.root == LIVE_SYSFS

    def limit(self, name: str, default: float) -> float:
        return float(self.limits.get(name, default))

    def udev(self) -> Any:
        """The pyudev context of the live machine, or None (captured machine, no udev)."""
        if self.udev_factory is None:
            return None
        if not hasattr(self, "_udev"):
            self._udev = self.udev_factory()
        return self._udev

    def __getstate__(self) -> dict[str, Any]:
        """The context as a routine's child process receives it (see `routine_process`).

        Live handles cannot cross a process boundary, so they are made again on the other
        side: the psutil module travels as a marker, and pyudev's Context is left behind
        for `udev_factory` to make on first use there. `ask` stays behind too (it is often
        a bound method of a terminal front end): the child asks its questions through
        the pipe to its parent, which calls the real one.
        """
        state = dict(self.__dict__)
        if isinstance(self.psutil, types.ModuleType):
            state["psutil"] = _LIVE_PSUTIL
        state.pop("_udev", None)
        state["ask"] = _nobody_to_ask
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if state.get("psutil") == _LIVE_PSUTIL:
            state["psutil"] = live()
        self.__dict__.update(state)

    @classmethod
    def for_machine(
        cls,
        sysfs_root: Path | None = None,
        *,
        psutil_snapshot: Path | None = None,
        **kwargs: Any,
    ) -> ProbeContext:
        """A context for the live machine, or for a captured one at `sysfs_root`."""
        if sysfs_root is None or Path(sysfs_root) == LIVE_SYSFS:
            source = PsutilSnapshot.load(psutil_snapshot) if psutil_snapshot else live()
            reason = "" if source is not None else "psutil is not installed"
            kwargs.setdefault("udev_factory", _live_udev)
            return cls(
                sysfs=SysfsRoot(LIVE_SYSFS), psutil=source, psutil_missing_reason=reason, **kwargs
            )
        root = Path(sysfs_root)
        machine = root.parent
        snapshot = psutil_snapshot or machine / "psutil"
        source = PsutilSnapshot.load(snapshot) if snapshot.is_dir() else None
        reason = "" if source else f"the captured machine has no psutil snapshot ({snapshot})"
        if not kwargs.get("smartctl_json"):
            # A capture carries its drives' `smartctl --json` outputs; never run the
            # host's smartctl against a machine that is not this one.
            kwargs["smartctl_json"] = sorted((machine / "smartctl").glob("*.json"))
        kwargs.setdefault("procfs", SysfsRoot(machine / "proc"))
        kwargs.setdefault("devfs_root", machine / "dev")
        kwargs.setdefault("etc_root", machine / "etc")
        return cls(sysfs=SysfsRoot(root), psutil=source, psutil_missing_reason=reason, **kwargs)


def _live_udev() -> Any:
    try:
        import pyudev
    except ImportError:
        return None
    try:
        return pyudev.Context()
    except Exception:
        # No udev on this machine (a container): probes fall back to sysfs.
        return None
