#!/usr/bin/env bash
# The contrib plugin packages (contrib/*), each installed with the framework into a
# fresh virtualenv by tox and tested there (tox.ini: one env per package). Builds the
# wheels PyPI lacks once first (scripts/contrib_wheels.sh). Extra arguments go to tox
# (e.g. scripts/test_contrib.sh -e sqlite-storage).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/contrib_wheels.sh
echo "== tox: contrib packages in fresh environments"
if [ "$#" -gt 0 ]; then
    exec "$PYTHON" -m tox "$@"
fi
# two at a time: installing is mostly waiting for pip and the disk, not the CPU
exec "$PYTHON" -m tox run-parallel -m contrib --parallel 2 --parallel-no-spinner
