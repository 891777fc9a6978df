"""Regenerate the Python stubs of ``hookspecs/weaviate_plugin.proto``.

Usage: ``python scripts/gen_grpc.py [OUT_DIR]`` (default ``weaviate_ext/grpc``).

The stubs are generated with grpcio-tools (``grpc_tools.protoc``) and committed; the
generated imports are rewritten to absolute imports inside ``weaviate_ext.grpc`` and
each file gets a header saying it is generated and by which grpcio-tools version.
``tests/test_grpc_stubs.py`` regenerates them into a temporary directory and fails
when they differ from the committed ones.
"""

from __future__ import annotations

import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "hookspecs" / "weaviate_plugin.proto"
DEFAULT_OUT = ROOT / "weaviate_ext" / "grpc"
STEM = "weaviate_plugin"
PACKAGE = "weaviate_ext.grpc"
GENERATED = (f"{STEM}_pb2.py", f"{STEM}_pb2.pyi", f"{STEM}_pb2_grpc.py")
"""The files this script writes."""


def header(tools_version: str) -> str:
    """The comment put on top of every generated file."""
    return (
        "# Generated from hookspecs/weaviate_plugin.proto by scripts/gen_grpc.py\n"
        f"# with grpcio-tools {tools_version}. DO NOT EDIT: edit the .proto and regenerate.\n"
    )


def generate(out_dir: Path) -> list[Path]:
    """Write the stubs into ``out_dir``; return the paths written."""
    from grpc_tools import protoc

    tools_version = version("grpcio-tools")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        args = [
            "protoc",
            f"-I{PROTO.parent}",
            f"--python_out={scratch}",
            f"--pyi_out={scratch}",
            f"--grpc_python_out={scratch}",
            str(PROTO),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {PROTO}")
        written = []
        for name in GENERATED:
            text = (Path(scratch) / name).read_text()
            text = text.replace(f"import {STEM}_pb2 as", f"from {PACKAGE} import {STEM}_pb2 as")
            target = out_dir / name
            target.write_text(header(tools_version) + text)
            written.append(target)
    return written


def main(argv: list[str]) -> int:
    """Command-line entry point."""
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    for path in generate(out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
