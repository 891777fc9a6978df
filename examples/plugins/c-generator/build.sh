#!/bin/sh
# Build extractive-generator from one C source: plugin.wasm (plugin.yaml, runtime wasm)
# and plugin.so (plugin-native.yaml, runtime native). Nothing built is committed.
set -eu
cd "$(dirname "$0")"
../../../sdk/c/build-plugin.sh plugin src/extractive_generator.c
echo "c-generator: ok"
