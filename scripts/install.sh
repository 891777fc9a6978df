#!/usr/bin/env bash
# Install everything the demo and the tests need, on a fresh Debian 12 machine as root:
# the C toolchains for the wasm and native example plugins (apt-get), then
# weaviate-ext (editable) with its test and lint extras (pip). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install_toolchains.sh
"$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    -e ".[test,lint]"
# pyenv only makes console scripts (weaviate-ext) visible on PATH after a rehash
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
