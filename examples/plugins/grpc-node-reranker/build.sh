#!/bin/sh
# Build the grpc-node-reranker example: install its npm dependencies (the versions
# pinned in package-lock.json) into ./node_modules, copy the gRPC contract next to
# server.js so the plugin directory is self-contained at run time, check the manifest.
# Needs node (>= 18) and npm on PATH.
set -eu
cd "$(dirname "$0")"
here="$(pwd)"
PYTHON="${PYTHON:-python3}"
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is not on PATH; the Node.js example needs node >= 18 and npm" >&2
        exit 1
    fi
done
npm install --no-audit --no-fund --loglevel=error
cp ../../../hookspecs/weaviate_plugin.proto weaviate_plugin.proto
node -e "require('@grpc/grpc-js'); require('@grpc/proto-loader'); require('./src/bm25')"
"$PYTHON" -c "from weaviate_ext import load_manifest; load_manifest('plugin.yaml')"
echo "$(basename "$here"): ok"
