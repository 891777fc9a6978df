#!/bin/sh
# Build the Rust plugin crate in the current directory (a crate on this SDK) into
# OUT.wasm (a WASI module) or OUT.so (a shared library), with the SDK's flags: the one
# source of cargo flags for every Rust plugin (weaviate-ext new's build.sh calls it).
#
#   sh sdk/rust/build-plugin.sh wasm|native CRATE OUT
#
# CRATE is the crate's name (its artifact is CRATE.wasm / libCRATE.so). Builds offline;
# cargo's output goes to $CARGO_TARGET_DIR (default build/target). Debian's toolchain
# is used even when a rustup one is first in PATH; WV_CARGO and WV_RUSTC pick others.
# WV_RUSTFLAGS_WASM=... replaces the wasm-only code generation flags.
set -eu
if [ "$#" -ne 3 ]; then
    echo "usage: $0 wasm|native CRATE OUT" >&2
    exit 2
fi
TARGET="$1"
CRATE="$2"
OUT="$3"
CARGO="${WV_CARGO:-/usr/bin/cargo}"
RUSTC_BIN="${WV_RUSTC:-$(dpkg -L rustc 2>/dev/null | grep -m1 '/bin/rustc$' || echo /usr/bin/rustc)}"
for tool in "$CARGO" "$RUSTC_BIN"; do
    if [ ! -x "$tool" ]; then
        echo "error: $tool not found: install rustc and cargo (and libstd-rust-dev-wasm32 for wasm), or set WV_CARGO/WV_RUSTC" >&2
        exit 1
    fi
done
export RUSTC="$RUSTC_BIN"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/build/target}"
export CARGO_HOME="${CARGO_HOME:-$PWD/build/cargo-home}"
# the release profile of every plugin: whole-program optimisation, one codegen unit
PROFILE="--config profile.release.opt-level=3 --config profile.release.lto=true"
PROFILE="$PROFILE --config profile.release.codegen-units=1 --config profile.release.strip=true"
# wasm: 128-bit SIMD and bulk memory (on by default in wasmtime), as the C SDK's
# build-plugin.sh: every loop back-edge pays an epoch check, wider iterations matter
WASM_RUSTFLAGS="${WV_RUSTFLAGS_WASM:--C target-feature=+simd128,+bulk-memory}"
case "$TARGET" in
wasm) TARGET_EXT=wasm ;;
native) TARGET_EXT=so ;;
*) TARGET_EXT="" ;;
esac
case "$TARGET" in
wasm)
    # shellcheck disable=SC2086
    RUSTFLAGS="${RUSTFLAGS:-} $WASM_RUSTFLAGS" "$CARGO" build --offline --release --quiet \
        --target wasm32-wasi $PROFILE --config 'profile.release.panic="abort"'
    built="$CARGO_TARGET_DIR/wasm32-wasi/release/$CRATE.wasm"
    ;;
native)
    # a panic must unwind into the SDK's catch (an error), never abort the host
    # shellcheck disable=SC2086
    "$CARGO" build --offline --release --quiet $PROFILE --config 'profile.release.panic="unwind"'
    built="$CARGO_TARGET_DIR/release/lib$CRATE.so"
    ;;
*)
    echo "error: unknown target $TARGET (wasm, native)" >&2
    exit 2
    ;;
esac
# copy, then rename over the old file: a host that has the old library loaded maps that
# file, and writing into it (cp onto it) would change code under the running process
cp "$built" "$OUT.$TARGET_EXT.tmp"
mv -f "$OUT.$TARGET_EXT.tmp" "$OUT.$TARGET_EXT"
