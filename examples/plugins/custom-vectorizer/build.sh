#!/bin/sh
# Build custom-embedder: the model file (build/model/model.bin) and the same C source as a
# WASI module (plugin-binary.wasm, for plugin.yaml) and a shared library
# (plugin-binary.so, for plugin-native.yaml). Nothing built is committed.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
mkdir -p build/model
"$PYTHON" src/make_model.py build/model/model.bin
../../../sdk/c/build-plugin.sh plugin-binary src/custom_embedder.c
echo "custom-vectorizer: ok"
