"""Fixtures of the scaffold tests: scaffolds made with ``weaviate-ext new`` and built.

Every ``(type, runtime, language)`` combination is created and built at most once per
session, on first use (:class:`Scaffolds`), into one session directory. Builds share
what can be shared without changing what is built:

- one cargo target directory for every Rust scaffold (each crate is its own package,
  so nothing collides) and a release profile without LTO and with parallel codegen
  units: the same sources and SDK, compiled faster;
- one ``node_modules`` (``@grpc/grpc-js`` and ``@grpc/proto-loader`` at the versions
  the template pins, installed once with npm, cache first), symlinked into each
  Node.js scaffold before its ``build.sh`` runs (which then skips ``npm install``).

The tools fail the tests, not skip them, when they are missing: CI installs them
(``scripts/install_toolchains.sh``, node and npm).
"""

from __future__ import annotations

import sys

import pytest
from scaffold_helpers import Scaffolds


@pytest.fixture(scope="session")
def build_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of every build: the shared cargo target, this interpreter."""
    target = tmp_path_factory.mktemp("cargo-target")
    return {
        "PYTHON": sys.executable,
        "CARGO_TARGET_DIR": str(target),
        "CARGO_PROFILE_RELEASE_LTO": "false",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
    }


@pytest.fixture(scope="session")
def scaffolds(tmp_path_factory: pytest.TempPathFactory, build_env: dict[str, str]) -> Scaffolds:
    """The session's matrix of scaffolds (built lazily, in one session directory)."""
    return Scaffolds(tmp_path_factory.mktemp("matrix") / "plugins", build_env)
