#!/usr/bin/env bash
# Install what scripts/build_examples.sh needs, with apt-get: clang + lld + wasi-libc +
# the wasm32 compiler runtime (C -> .wasm), gcc (C -> .so), and Debian's Rust with the
# wasm32 standard library and lld-14 (Rust -> .wasm: rustc 1.63, target wasm32-wasi;
# the examples call /usr/bin/cargo with RUSTC set to Debian's rustc, see
# examples/plugins/custom-vectorizer/build.sh).
# Debian 12, as root (or with sudo); quiet and idempotent: nothing is done when every
# package is already installed.
set -euo pipefail
PACKAGES=(clang lld wasi-libc libclang-rt-dev-wasm32 gcc libc6-dev
    rustc cargo libstd-rust-dev-wasm32 lld-14
    # wabt: wasm2wat/wasm-objdump, to check the code generated for wasm32
    # (tests/test_cabi_call_path.py checks that the C example's loop is unrolled)
    wabt
    # g++ and cmake compile llama.cpp for llama-cpp-python (scripts/contrib_wheels.sh);
    # redis-server is started by contrib/redis-storage's tests on loopback (never as
    # a system service)
    g++ cmake redis-server
    # podman (with runc: crun fails here) builds and runs the serve image, from a base
    # that mmdebstrap makes out of Debian packages (tests/deploy, marker "container");
    # docker-registry is the CNCF distribution server the registry tests start on
    # loopback, apache2-utils its htpasswd (tests/registry); containernetworking-plugins
    # is the network stack podman publishes ports with (CNI, as podman info reports here)
    podman runc containernetworking-plugins mmdebstrap docker-registry apache2-utils)
missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
# Node.js (>= 18) for the Node.js gRPC example and scaffold: Debian's nodejs and npm,
# unless a node is there already (e.g. a nodesource build, which brings its own npm)
if ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# no service may start on install (redis-server's package would start one): the
# standard policy-rc.d answer "101: not allowed", for the length of the install only
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    added_policy=1
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$added_policy" = 1 ]; then $SUDO rm -f "$policy"; fi
echo "installed: ${missing[*]}"
