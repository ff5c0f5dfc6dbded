"""Build tiny sysfs-like trees in a test's tmp_path, the way unit tests of readers need them.

    root = write_tree(tmp_path / "sys", {
        "class/power_supply/BAT0": Link("../../devices/platform/battery/power_supply/BAT0"),
        "devices/platform/battery/power_supply/BAT0/type": "Battery\\n",
        "devices/platform/battery/power_supply/BAT0/energy_full": "41000000",   # no newline
        "devices/platform/battery/power_supply/BAT0/manufacturer": b"\\xffACME  \\n",
    })

Values: str or bytes are file contents written verbatim (so a missing trailing newline or
invalid UTF-8 is kept), `Link(target)` is a symlink (relative targets as sysfs has them),
`Dir()` an empty directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Dir:
    pass


def write_tree(root: Path, tree: Mapping[str, str | bytes | Link | Dir]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, value in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, Link):
            os.symlink(value.target, path)
        elif isinstance(value, Dir):
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(value, bytes):
            path.write_bytes(value)
        else:
            path.write_bytes(value.encode("utf-8"))
    return root
