"""Where the plugin-side SDKs are: the C SDK, the Rust crate and the contracts.

``weaviate-ext new`` copies ("vendors") the SDK files a plugin needs into the new
plugin directory, so that the plugin builds on its own, on any machine with the
toolchain, without a weaviate-ext checkout next to it. The files are package data of
:mod:`weaviate_ext._data` (found with :mod:`importlib.resources`): in the source tree
its ``hookspecs`` and ``sdk`` are symbolic links to the top-level ``hookspecs/`` and
``sdk/`` folders, and the wheel and sdist carry copies of them, so an installed
weaviate-ext (wheel or editable) needs no checkout and no environment variable.
``$WEAVIATE_EXT_SDK_DIR`` names another tree (holding ``sdk/`` and ``hookspecs/``) to
take them from instead.

A vendored SDK keeps the source tree's layout (``sdk/c``, ``sdk/rust``,
``hookspecs/``), so the SDK's own build scripts (``sdk/c/build-plugin.sh``,
``sdk/rust/build-plugin.sh``) run unchanged inside a plugin: scaffolded plugins are
compiled with the same flags as the SDK-built examples.
"""

from __future__ import annotations

import os
import stat
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from weaviate_ext.errors import WeaviateExtError

SDK_DIR_ENV = "WEAVIATE_EXT_SDK_DIR"
"""A weaviate-ext source tree (holding ``sdk/`` and ``hookspecs/``) to take the SDKs from."""

DATA_PACKAGE = "weaviate_ext._data"
"""The package whose data are the contracts and SDKs (``hookspecs/``, ``sdk/``)."""

C_SDK_FILES = (
    ("hookspecs/weaviate_plugin.h", "hookspecs/weaviate_plugin.h"),
    ("sdk/c/weaviate_plugin_sdk.h", "sdk/c/weaviate_plugin_sdk.h"),
    ("sdk/c/weaviate_plugin_sdk.c", "sdk/c/weaviate_plugin_sdk.c"),
    ("sdk/c/build-plugin.sh", "sdk/c/build-plugin.sh"),
)
"""(source in the tree, destination in the plugin) of what a C plugin vendors."""

RUST_SDK_DIR = "sdk/rust"
"""The Rust crate ``weaviate_plugin_sdk``, vendored as ``sdk/rust`` of a Rust plugin."""

RUST_SDK_FILES = ("Cargo.toml", "Cargo.lock", "README.md", "build-plugin.sh")
"""The files of the Rust SDK's top folder a Rust plugin vendors (with ``src/*.rs``)."""

PROTO_FILES = (("hookspecs/weaviate_plugin.proto", "proto/weaviate_plugin.proto"),)
"""The gRPC contract, vendored by plugins in other languages than Python."""


class SdkNotFound(WeaviateExtError):
    """The C or Rust SDK or the contracts are not where weaviate-ext looks for them."""


def _candidates() -> list[Traversable]:
    roots: list[Traversable] = []
    if os.environ.get(SDK_DIR_ENV):
        roots.append(Path(os.environ[SDK_DIR_ENV]))
    roots.append(files(DATA_PACKAGE))
    return roots


def _child(root: Traversable, rel: str) -> Traversable:
    node = root
    for part in rel.split("/"):
        node = node / part
    return node


def sdk_root(needed: str = "sdk/c/weaviate_plugin_sdk.h") -> Traversable:
    """The tree holding ``needed`` (a path relative to the tree's top)."""
    roots = _candidates()
    for root in roots:
        if _child(root, needed).is_file():
            return root
    where = ", ".join(str(r) for r in roots)
    raise SdkNotFound(
        f"cannot find {needed} (looked in {where}): the C/Rust SDKs and the contracts are "
        f"package data of weaviate-ext ({DATA_PACKAGE}); reinstall weaviate-ext, or set "
        f"{SDK_DIR_ENV} to a weaviate-ext source tree"
    )


def _write(source: Traversable, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source.read_bytes())
    if path.suffix == ".sh":
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def vendor(pairs: tuple[tuple[str, str], ...], destination: Path) -> list[Path]:
    """Copy each ``(source, target)`` pair of the SDK tree into ``destination``."""
    root = sdk_root(pairs[0][0])
    return [_write(_child(root, source), destination / target) for source, target in pairs]


def vendor_rust_sdk(destination: Path) -> list[Path]:
    """Copy the Rust SDK crate (``Cargo.toml``, ``build-plugin.sh``, ``src/``) into a plugin."""
    root = _child(sdk_root(f"{RUST_SDK_DIR}/Cargo.toml"), RUST_SDK_DIR)
    sources = [(name, root / name) for name in RUST_SDK_FILES]
    sources += [(f"src/{e.name}", e) for e in (root / "src").iterdir() if e.name.endswith(".rs")]
    written = []
    for rel, source in sorted(sources, key=lambda item: item[0]):
        if source.is_file():
            written.append(_write(source, destination / RUST_SDK_DIR / rel))
    return written
