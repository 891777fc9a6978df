#!/bin/sh
# Build a python-runtime plugin: byte-compile its sources (a syntax error fails the
# build) and check its manifest. Nothing is installed; the manager imports src/ directly.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m compileall -q -f src
"$PYTHON" -c "from weaviate_ext import load_manifest; load_manifest('plugin.yaml')"
echo "$(basename "$(pwd)"): ok"
