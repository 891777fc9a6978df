#!/bin/sh
# Build c-embedder: the model file (build/model/model.bin) and the same C source as a
# WASI module (plugin.wasm, for plugin.yaml) and a shared library
# (plugin.so, for plugin-native.yaml). Nothing built is committed.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
mkdir -p build/model
"$PYTHON" src/make_model.py build/model/model.bin
../../../sdk/c/build-plugin.sh plugin src/c_embedder.c
echo "c-vectorizer: ok"
