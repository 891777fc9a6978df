#!/bin/sh
# Build overlap-reranker from one C source: plugin.wasm (plugin.yaml, runtime wasm) and
# plugin.so (plugin-native.yaml, runtime native). Nothing built is committed.
set -eu
cd "$(dirname "$0")"
../../../sdk/c/build-plugin.sh plugin src/overlap_reranker.c
echo "c-reranker: ok"
