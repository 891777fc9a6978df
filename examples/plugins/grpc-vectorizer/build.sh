#!/bin/sh
# Build the grpc-vectorizer example: byte-compile the server and its model (a syntax
# error fails the build), check the manifest, and check the SDK is importable by the
# interpreter the host will use for "python" in spec.command.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m py_compile plugin_server.py
"$PYTHON" -m compileall -q -f src
"$PYTHON" -c "import weaviate_plugin_sdk"
"$PYTHON" -c "from weaviate_ext import load_manifest; load_manifest('plugin.yaml')"
echo "$(basename "$(pwd)"): ok"
