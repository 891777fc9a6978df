#!/usr/bin/env bash
# The whole test suite: install, build the examples, lint (ruff), type-check (mypy),
# check the generated docs, test every contrib package in its own env (tox), then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k reload);
# WEAVIATE_EXT_SKIP_TOX=1 skips the contrib envs.
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
if [ "${WEAVIATE_EXT_SKIP_TOX:-0}" != 1 ]; then
    echo "== contrib packages, each in a fresh env (tox)"
    PYTHON="$PYTHON" bash scripts/test_contrib.sh
fi
echo "== pytest"
"$PYTHON" -m pytest -p no:cacheprovider "$@"
