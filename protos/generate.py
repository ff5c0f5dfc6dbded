"""Generate the Python code of the contract from `protos/probelink/v1/*.proto`.

    python protos/generate.py              # rewrite the committed code in place
    python protos/generate.py --out DIR    # write a fresh generation under DIR

`make protos` runs the first form; the test that guards the committed code runs the
second and compares. Plugins come from the pinned grpcio-tools and mypy-protobuf.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
SOURCES = sorted((HERE / "probelink" / "v1").glob("*.proto"))


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    mypy_plugin = shutil.which("protoc-gen-mypy", path=str(bindir)) or shutil.which(
        "protoc-gen-mypy"
    )
    mypy_grpc_plugin = shutil.which("protoc-gen-mypy_grpc", path=str(bindir)) or shutil.which(
        "protoc-gen-mypy_grpc"
    )
    if not mypy_plugin or not mypy_grpc_plugin:
        raise SystemExit(
            "protoc-gen-mypy not found: install the dev extras (pip install -e '.[dev]')"
        )
    args = [
        "grpc_tools.protoc",
        f"-I{HERE}",
        # The well-known types (descriptor, duration, timestamp) ship inside grpc_tools.
        f"-I{resources.files('grpc_tools') / '_proto'}",
        f"--plugin=protoc-gen-mypy={mypy_plugin}",
        f"--plugin=protoc-gen-mypy_grpc={mypy_grpc_plugin}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(HERE)) for p in SOURCES),
    ]
    # protoc resolves the relative source names against the include path, not the cwd.
    cwd = os.getcwd()
    os.chdir(HERE)
    try:
        code = protoc.main(args)
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"protoc failed with exit status {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output root (default: in place)")
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
