#!/usr/bin/env bash
# Build the `weaviate-ext serve` image (deploy/Containerfile) with podman, offline inside
# the build: the dependencies' wheels are built on the host into deploy/wheelhouse/
# (cached), and the base image can be made from Debian packages with mmdebstrap, so no
# container registry is needed. tests/deploy/test_container.py builds the image this way.
#
# Usage: scripts/build_image.sh [--wheels-only] [--print-base]
#   --wheels-only   only fill deploy/wheelhouse/ (then `podman build -f deploy/Containerfile .`
#                   or `podman-compose build` needs no network)
#   --print-base    only make (or find) the base image and print its name
#
# Knobs (environment variables):
#   IMAGE           tag of the image built (default localhost/weaviate-ext-serve:dev)
#   BASE_IMAGE      base image; "mmdebstrap" (the default) builds a Debian bookworm base
#                   with python3 and python3-venv by mmdebstrap and `podman import`s it
#                   once (tag localhost/weaviate-ext-base:<hash>); any other value is
#                   used as is, e.g. docker.io/library/python:3.11-slim (needs a registry)
#   DEBIAN_MIRROR   mirror for mmdebstrap (default http://deb.debian.org/debian)
#   CONTRIB         contrib packages installed in the image (default
#                   "minilm-vectorizer bm25-reranker"; must match the Containerfile's
#                   CONTRIB build argument, which this script passes)
#   PREBUILD        1 (default): build the wheelhouse on the host with pip (the host's
#                   Python must have the base image's minor version); 0: leave
#                   deploy/wheelhouse/ empty and let the build's first stage download
#                   from PyPI (needs network and a trusted TLS path inside the build)
#   CACHE_DIR       where base tarballs and wheelhouses are kept between runs, keyed by a
#                   hash of what goes in them (default ~/.cache/weaviate-ext-container)
#   PYTHON          host Python used for the wheelhouse (default python3)
#   PODMAN          the container tool (default podman; docker works with a BASE_IMAGE)
#   PODMAN_RUNTIME  OCI runtime passed to podman (default runc: crun fails in some
#                   sandboxes); CONTAINERS_CONF defaults to deploy/containers.conf
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
ROOT=$(pwd)
IMAGE="${IMAGE:-localhost/weaviate-ext-serve:dev}"
BASE_IMAGE="${BASE_IMAGE:-mmdebstrap}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CONTRIB="${CONTRIB:-minilm-vectorizer bm25-reranker}"
PREBUILD="${PREBUILD:-1}"
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/weaviate-ext-container}"
PYTHON="${PYTHON:-python3}"
PODMAN="${PODMAN:-podman}"
PODMAN_RUNTIME="${PODMAN_RUNTIME:-runc}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/deploy/containers.conf}"
BASE_PACKAGES="python3,python3-venv,ca-certificates"
mkdir -p "$CACHE_DIR"

podman_() {
    if [ "$(basename "$PODMAN")" = podman ]; then
        "$PODMAN" --runtime "$PODMAN_RUNTIME" "$@"
    else
        "$PODMAN" "$@"
    fi
}

key() { sha256sum | cut -c1-16; }

# The base: Debian bookworm from mmdebstrap, imported once per package list.
make_base() {
    if [ "$BASE_IMAGE" != mmdebstrap ]; then
        echo "$BASE_IMAGE"
        return
    fi
    local hash tag tarball
    hash=$(printf 'bookworm minbase %s %s' "$BASE_PACKAGES" "$DEBIAN_MIRROR" | key)
    tag="localhost/weaviate-ext-base:$hash"
    if ! podman_ image exists "$tag" 2>/dev/null; then
        tarball="$CACHE_DIR/base-$hash.tar"
        if [ ! -s "$tarball" ]; then
            echo "== base: mmdebstrap bookworm ($BASE_PACKAGES)" >&2
            mmdebstrap --quiet --format=tar --variant=minbase --include="$BASE_PACKAGES" \
                bookworm "$tarball.part" "$DEBIAN_MIRROR" >&2
            mv "$tarball.part" "$tarball"
        fi
        echo "== base: podman import -> $tag" >&2
        podman_ import --change 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null
    fi
    echo "$tag"
}

# The wheelhouse: every dependency of weaviate-ext[serve] and the contrib packages, plus
# the build backend, as wheels; the framework and contrib wheels themselves are built
# in the image's first stage from the sources.
make_wheels() {
    rm -f deploy/wheelhouse/*.whl
    [ "$PREBUILD" = 1 ] || return 0
    local projects=(".[serve]") hash dir
    for name in $CONTRIB; do projects+=("./contrib/$name"); done
    hash=$(
        {
            "$PYTHON" -c 'import sys; print(sys.version_info[:2])'
            cat setup.cfg pyproject.toml
            for name in $CONTRIB; do cat "contrib/$name/pyproject.toml"; done
        } | key
    )
    dir="$CACHE_DIR/wheelhouse-$hash"
    if [ ! -f "$dir/.complete" ]; then
        echo "== wheelhouse: pip wheel on the host -> $dir" >&2
        rm -rf "$dir"
        "$PYTHON" -m pip wheel --quiet --wheel-dir "$dir" "${projects[@]}" "setuptools>=77" wheel >&2
        # built from the sources inside the image, not taken from here
        rm -f "$dir"/weaviate_ext-*.whl
        for name in $CONTRIB; do rm -f "$dir/weaviate_ext_${name//-/_}"-*.whl; done
        touch "$dir/.complete"
    fi
    cp -l "$dir"/*.whl deploy/wheelhouse/ 2>/dev/null || cp "$dir"/*.whl deploy/wheelhouse/
}

case "${1:-}" in
--wheels-only)
    make_wheels
    exit 0
    ;;
--print-base)
    make_base
    exit 0
    ;;
"") ;;
*)
    echo "usage: $0 [--wheels-only|--print-base]" >&2
    exit 2
    ;;
esac

base=$(make_base)
if [ "$PREBUILD" = 1 ]; then  # the host builds the wheels: same Python minor version
    host=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    inside=$(podman_ run --rm --network none "$base" python3 -c \
        'import sys; print("%d.%d" % sys.version_info[:2])')
    if [ "$host" != "$inside" ]; then
        echo "error: host Python $host cannot prebuild wheels for the base's Python $inside" >&2
        exit 1
    fi
fi
make_wheels
echo "== podman build $IMAGE (base $base)" >&2
options=()
[ "$PREBUILD" = 1 ] && options+=(--network none)
# podman: the docker format, as the OCI image format has no HEALTHCHECK (docker builds
# that format anyway and has no --format)
[ "$(basename "$PODMAN")" = podman ] && options+=(--format docker)
podman_ build "${options[@]}" --tag "$IMAGE" \
    --build-arg "BASE_IMAGE=$base" --build-arg "CONTRIB=$CONTRIB" \
    --file deploy/Containerfile . >&2
echo "$IMAGE"
