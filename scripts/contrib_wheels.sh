#!/usr/bin/env bash
# Build, once, the wheels the contrib packages need that PyPI has no wheel of, into the
# wheelhouse every tox env and the demo install from (tox.ini's PIP_FIND_LINKS):
# $WEAVIATE_EXT_WHEELHOUSE, else ~/.cache/weaviate-ext-wheels.
#
# llama-cpp-python (contrib/llama-generator) ships only an sdist that compiles
# llama.cpp: about 6 minutes on 2 cores, then never again on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
WHEELHOUSE="${WEAVIATE_EXT_WHEELHOUSE:-$HOME/.cache/weaviate-ext-wheels}"
LLAMA_VERSION="0.3.36"  # the pin in contrib/llama-generator/pyproject.toml
mkdir -p "$WHEELHOUSE"
if ! ls "$WHEELHOUSE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    echo "== building llama-cpp-python $LLAMA_VERSION (compiles llama.cpp; ~6 min on 2 cores, once)"
    started=$SECONDS
    "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps \
        -w "$WHEELHOUSE" "llama-cpp-python==$LLAMA_VERSION"
    echo "   built in $((SECONDS - started)) s -> $WHEELHOUSE"
fi
