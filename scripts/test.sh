#!/usr/bin/env bash
# The whole test suite: install, lint (ruff), type-check (mypy), then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k reload).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install.sh
PYTHON="$PYTHON" bash scripts/build_examples.sh
echo "== ruff"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .
echo "== mypy"
"$PYTHON" -m mypy
echo "== generated docs up to date"
"$PYTHON" scripts/gen_docs.py --check
echo "== pytest"
"$PYTHON" -m pytest -p no:cacheprovider "$@"
