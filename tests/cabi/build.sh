#!/bin/sh
# Build the fault plugins used by tests/test_wasm.py, tests/test_native.py and
# tests/test_cabi_vectorize_into.py into OUTDIR
# (a .wasm and a .so each). The tests call this; nothing built is committed.
#   tests/cabi/build.sh OUTDIR
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:?usage: $0 OUTDIR}"
mkdir -p "$OUT"
BUILD="$HERE/../../sdk/c/build-plugin.sh"
"$BUILD" "$OUT/faults" "$HERE/faults.c"
"$BUILD" "$OUT/faults_into" "$HERE/faults_into.c"
# these two carry (part of) the SDK themselves or do without it
SDK_SKIP=1 "$BUILD" "$OUT/missing_exports" "$HERE/missing_exports.c"
SDK_SKIP=1 "$BUILD" "$OUT/abi_mismatch" "$HERE/abi_mismatch.c"
