#!/bin/sh
# Build rust-embedder: the model file (build/model/model.bin) and the crate as a WASI
# module (plugin.wasm, for plugin.yaml), with Debian's Rust (rustc 1.63, the wasm32-wasi
# standard library from libstd-rust-dev-wasm32; scripts/install_toolchains.sh installs
# them). Offline: the crate's only dependency is sdk/rust. Cargo's output goes to
# build/target; nothing built is committed.
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
"$PYTHON" src/make_rust_model.py build/model/model.bin 768
RUSTC="$RUSTC_BIN" CARGO_TARGET_DIR="$PWD/build/target" CARGO_HOME="$PWD/build/cargo-home" \
    "$CARGO" build --offline --release --quiet --target wasm32-wasi
cp build/target/wasm32-wasi/release/rust_vectorizer.wasm plugin.wasm
echo "rust-vectorizer: ok"
