#!/usr/bin/env bash
# The main job: install, then load the example plugins of every runtime and call them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install.sh
PYTHON="$PYTHON" bash scripts/build_examples.sh
"$PYTHON" examples/demo.py "$@"
