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
# Debian's toolchain, not a rustup one first in PATH (which has no wasm32-wasi target)
CARGO="${WV_CARGO:-/usr/bin/cargo}"
RUSTC_BIN="${WV_RUSTC:-$(dpkg -L rustc 2>/dev/null | grep -m1 '/bin/rustc$' || echo /usr/bin/rustc)}"
for tool in "$CARGO" "$RUSTC_BIN"; do
    if [ ! -x "$tool" ]; then
        echo "error: $tool not found; run scripts/install_toolchains.sh" >&2
        exit 1
    fi
done
mkdir -p build/model
"$PYTHON" src/make_model.py build/model/model.bin 768
export RUSTC="$RUSTC_BIN" CARGO_TARGET_DIR="$PWD/build/target" CARGO_HOME="$PWD/build/cargo-home"
"$CARGO" build --offline --release --quiet --target wasm32-wasi
# copy, then rename over the old file: a host that has the old library loaded maps that
# file, and writing into it (cp onto it) would change code under the running process
cp build/target/wasm32-wasi/release/custom_vectorizer.wasm plugin-binary.wasm.tmp
mv -f plugin-binary.wasm.tmp plugin-binary.wasm
# native: a panic must unwind into the SDK's catch (an error), never abort the host
"$CARGO" build --offline --release --quiet --config 'profile.release.panic="unwind"'
cp build/target/release/libcustom_vectorizer.so plugin-binary.so.tmp
mv -f plugin-binary.so.tmp plugin-binary.so
echo "custom-vectorizer: ok"
