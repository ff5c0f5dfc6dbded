"""Maps the repository's top-level folders into the one `probelink` import namespace.

pyproject.toml holds the metadata; this file only computes the package list, so that a
new sub-package (a probe family, say) is picked up without editing a hand-kept list.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "probelink": "protos/probelink",
    "probelink.agent": "agent",
    "probelink.server": "server",
    "probelink.probes": "probes",
    "probelink.firmware_tools": "firmware_tools",
}


def _packages() -> list[str]:
    found: list[str] = []
    for name, folder in ROOTS.items():
        root = Path(folder)
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root).parts
            found.append(".".join((name, *rel)))
    return found


setup(package_dir=ROOTS, packages=_packages())
