#!/bin/sh
# Build custom-embedder, the product spec's Rust vectorizer: the model file
# (build/model/model.bin) and the crate (src/lib.rs on sdk/rust) twice, as a WASI module
# (plugin-binary.wasm, for plugin.yaml) and as a native shared library
# (plugin-binary.so, for plugin-native.yaml).
#
# Debian's Rust (rustc 1.63 with the wasm32-wasi standard library from
# libstd-rust-dev-wasm32; scripts/install_toolchains.sh installs it), offline: the
# crate's only dependency is sdk/rust. Cargo's output goes to build/target; nothing
# built is committed.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
mkdir -p build/model
"$PYTHON" src/make_model.py build/model/model.bin 768
# the SDK's build script: the one source of cargo flags for every Rust plugin (Debian's
# toolchain, offline, the release profile, wasm SIMD, panic=unwind natively so that a
# panic is an error and never aborts the host, and an atomic replace of the old file)
BUILD=../../../sdk/rust/build-plugin.sh
sh "$BUILD" wasm custom_vectorizer plugin-binary
sh "$BUILD" native custom_vectorizer plugin-binary
echo "custom-vectorizer: ok"
