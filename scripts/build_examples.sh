#!/usr/bin/env bash
# Build every example plugin that has something to build (C -> .wasm and .so, model
# files), by running each examples/plugins/*/build.sh. Needs the toolchains of
# scripts/install_toolchains.sh. Extra arguments: example directory names to build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
    dirs=("$@")
else
    dirs=()
    for d in examples/plugins/*/; do dirs+=("$(basename "$d")"); done
fi
for d in "${dirs[@]}"; do
    script="examples/plugins/$d/build.sh"
    if [ ! -x "$script" ]; then
        echo "error: $script is missing or not executable" >&2
        exit 1
    fi
    "$script"
done
