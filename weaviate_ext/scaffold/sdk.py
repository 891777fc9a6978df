"""Where the plugin-side SDKs are: the C SDK, the Rust crate and the contracts.

``weaviate-ext new`` copies ("vendors") the SDK files a plugin needs into the new
plugin directory, so that the plugin builds on its own, on any machine with the
toolchain, without a weaviate-ext checkout next to it. The files come from the
top-level ``sdk/`` and ``hookspecs/`` folders of a weaviate-ext source tree: the
one named by ``$WEAVIATE_EXT_SDK_DIR``, else the tree this package is installed from
(an editable install, as ``scripts/install.sh`` makes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from weaviate_ext.errors import WeaviateExtError

SDK_DIR_ENV = "WEAVIATE_EXT_SDK_DIR"
"""A weaviate-ext source tree (holding ``sdk/`` and ``hookspecs/``) to take the SDKs from."""

C_SDK_FILES = (
    ("hookspecs/weaviate_plugin.h", "sdk/weaviate_plugin.h"),
    ("sdk/c/weaviate_plugin_sdk.h", "sdk/weaviate_plugin_sdk.h"),
    ("sdk/c/weaviate_plugin_sdk.c", "sdk/weaviate_plugin_sdk.c"),
)
"""(source in the tree, destination in the plugin) of what a C plugin vendors."""

RUST_SDK_DIR = "sdk/rust"
"""The Rust crate ``weaviate_plugin_sdk``, vendored as ``sdk/rust`` of a Rust plugin."""

PROTO_FILES = (("hookspecs/weaviate_plugin.proto", "proto/weaviate_plugin.proto"),)
"""The gRPC contract, vendored by plugins in other languages than Python."""


class SdkNotFound(WeaviateExtError):
    """The C or Rust SDK or the contracts are not where weaviate-ext looks for them."""


def _candidates() -> list[Path]:
    roots = []
    if os.environ.get(SDK_DIR_ENV):
        roots.append(Path(os.environ[SDK_DIR_ENV]))
    roots.append(Path(__file__).resolve().parents[2])
    return roots


def sdk_root(needed: str = "sdk/c/weaviate_plugin_sdk.h") -> Path:
    """The source tree holding ``needed`` (a path relative to the tree's top)."""
    roots = _candidates()
    for root in roots:
        if (root / needed).is_file():
            return root
    where = ", ".join(str(r) for r in roots)
    raise SdkNotFound(
        f"cannot find {needed} (looked in {where}): the C/Rust SDKs and the contracts "
        f"come from a weaviate-ext source tree; set {SDK_DIR_ENV} to one"
    )


def vendor(pairs: tuple[tuple[str, str], ...], destination: Path) -> list[Path]:
    """Copy each ``(source, target)`` pair of the SDK tree into ``destination``."""
    root = sdk_root(pairs[0][0])
    written = []
    for source, target in pairs:
        path = destination / target
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / source, path)
        written.append(path)
    return written


def vendor_rust_sdk(destination: Path) -> list[Path]:
    """Copy the Rust SDK crate (``Cargo.toml``, ``README.md``, ``src/``) to ``destination``."""
    root = sdk_root(f"{RUST_SDK_DIR}/Cargo.toml") / RUST_SDK_DIR
    written = []
    for source in sorted([root / "Cargo.toml", root / "README.md", *root.glob("src/*.rs")]):
        if not source.is_file():
            continue
        path = destination / RUST_SDK_DIR / source.relative_to(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        written.append(path)
    return written
