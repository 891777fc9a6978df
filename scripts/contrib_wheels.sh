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
# llama.cpp is built for a portable x86-64 (AVX2, FMA, F16C), not -march=native: on a
# CPU that advertises AMX (Xeon Sapphire Rapids) the native build runs AMX kernels that
# die with SIGSEGV in llama_decode where the machine does not enable AMX for a process.
# Bump LLAMA_BUILD when the flags change, so a cached wheel of the old build is replaced.
LLAMA_BUILD="portable-1"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF"
STAMP="$WHEELHOUSE/llama_cpp_python-$LLAMA_VERSION.$LLAMA_BUILD.built"
mkdir -p "$WHEELHOUSE"
if [ ! -f "$STAMP" ] || ! ls "$WHEELHOUSE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    echo "== building llama-cpp-python $LLAMA_VERSION (compiles llama.cpp; ~6 min on 2 cores, once)"
    started=$SECONDS
    rm -f "$WHEELHOUSE"/llama_cpp_python-*.whl "$WHEELHOUSE"/llama_cpp_python-*.built
    # --no-cache-dir: pip's own cache would hand back a wheel of another build
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$PYTHON" -m pip wheel --quiet --disable-pip-version-check \
        --no-deps --no-cache-dir -w "$WHEELHOUSE" "llama-cpp-python==$LLAMA_VERSION"
    touch "$STAMP"
    echo "   built in $((SECONDS - started)) s -> $WHEELHOUSE"
    # an installed copy of the old build has the same version: pip would keep it
    if "$PYTHON" -m pip show --quiet llama-cpp-python >/dev/null 2>&1; then
        "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --force-reinstall --no-deps "$WHEELHOUSE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
    fi
fi
