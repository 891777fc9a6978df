#!/bin/sh
# Build one C plugin into a WASI reactor module (OUT.wasm) and a shared library
# (OUT.so) from the same sources, with the C SDK (SDK_SKIP=1: without it).
#
#   sdk/c/build-plugin.sh OUT source.c [more.c ...]
#
# Needs clang, lld, wasi-libc and libclang-rt-dev-wasm32 for the .wasm, and clang (or
# gcc, or $CC_NATIVE) for the .so; scripts/install_toolchains.sh installs them.
# WV_TARGETS="wasm native" (the default) picks what to build.
set -eu
if [ "$#" -lt 2 ]; then
    echo "usage: $0 OUT source.c [more.c ...]" >&2
    exit 2
fi
SDK="$(cd "$(dirname "$0")" && pwd)"
HOOKSPECS="$(cd "$SDK/../../hookspecs" && pwd)"
OUT="$1"
shift
TARGETS="${WV_TARGETS:-wasm native}"
CLANG="${CLANG:-clang}"
# one compiler for both builds when it can be: the same code generation (and the same
# float results) from the one source; gcc when clang is missing
if [ -z "${CC_NATIVE:-}" ]; then
    if command -v "$CLANG" >/dev/null 2>&1; then CC_NATIVE="$CLANG"; else CC_NATIVE=gcc; fi
fi
SDK_SRC="$SDK/weaviate_plugin_sdk.c"
if [ "${SDK_SKIP:-0}" = 1 ]; then SDK_SRC=""; fi
COMMON="-O2 -std=c11 -Wall -Wextra -fvisibility=hidden -I$HOOKSPECS -I$SDK"
# wasm: 128-bit SIMD (as SSE2 for the .so) and bulk memory (memset/memcpy as single
# instructions), both on by default in wasmtime. In wasm every loop back-edge pays an
# epoch check (the call deadline), so fewer, wider iterations matter more than natively:
# these flags made the c-vectorizer kernel 1.3-2x faster. Bulk memory makes clang 14
# treat wasi-libc's thread-local errno as real TLS, hence local-exec (one thread).
WASM_FLAGS="${WASM_FLAGS:--msimd128 -mbulk-memory -ftls-model=local-exec}"

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "error: $1 not found; run scripts/install_toolchains.sh" >&2
        exit 1
    fi
}

for target in $TARGETS; do
    case "$target" in
    wasm)
        need "$CLANG"
        # shellcheck disable=SC2086
        "$CLANG" --target=wasm32-wasi -mexec-model=reactor -Wl,--export-dynamic $COMMON $WASM_FLAGS \
            -o "$OUT.wasm" "$@" $SDK_SRC || {
            echo "error: building $OUT.wasm failed (toolchain: scripts/install_toolchains.sh)" >&2
            exit 1
        }
        ;;
    native)
        need "$CC_NATIVE"
        # shellcheck disable=SC2086
        "$CC_NATIVE" -shared -fPIC $COMMON -o "$OUT.so" "$@" $SDK_SRC -lm
        ;;
    *)
        echo "error: unknown target $target (wasm, native)" >&2
        exit 2
        ;;
    esac
done
