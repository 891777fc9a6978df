#!/usr/bin/env bash
# The main job: install (toolchains, the framework, the contrib plugin packages), build
# the example plugins, then run examples/demo.py: a retrieval-augmented answer through
# contrib plugins on real engines, and plugins of every runtime answering.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install.sh
echo "== building the example plugins (C, Rust, Node.js)"
PYTHON="$PYTHON" bash scripts/build_examples.sh
echo "== demo"
"$PYTHON" examples/demo.py "$@"
