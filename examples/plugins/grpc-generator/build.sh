#!/bin/sh
# Build the grpc-generator example: byte-compile its source, check the SDK is importable
# by the interpreter the host runs for "python" in spec.command, check the manifest.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m compileall -q -f src
"$PYTHON" -c "import weaviate_plugin_sdk"
"$PYTHON" -c "from weaviate_ext import load_manifest; load_manifest('plugin.yaml')"
echo "$(basename "$(pwd)"): ok"
