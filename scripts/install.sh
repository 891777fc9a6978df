#!/usr/bin/env bash
# Install weaviate-ext (editable) with its test and lint tools into the current Python.
# Works on a fresh Debian 12 machine as root; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    -e ".[test,lint]"
# pyenv only makes console scripts (weaviate-ext) visible on PATH after a rehash
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
