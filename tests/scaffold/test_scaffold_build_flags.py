"""One source of build flags (issue 12, point 3): a scaffolded plugin is compiled by the
SDK's own build script, with exactly the flags of the SDK-built examples.

The C case is checked twice: the compiler's command lines (``CLANG`` is a wrapper that
records its arguments, honoured by ``sdk/c/build-plugin.sh``) and the generated code (the
``target_features`` custom section of both ``.wasm`` modules, as ``wasm-objdump -x``
shows it). The Rust case: the scaffold builds through the vendored copy of
``sdk/rust/build-plugin.sh``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from scaffold_helpers import require_tool

from weaviate_ext.scaffold.build import run_build
from weaviate_ext.scaffold.create import create_plugin

ROOT = Path(__file__).resolve().parents[2]
C_EXAMPLE = ROOT / "examples" / "plugins" / "c-vectorizer" / "src" / "c_embedder.c"


def _leb128(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def target_features(module: Path) -> set[str]:
    """The ``target_features`` custom section of a wasm module (``+simd128``, ...)."""
    data = module.read_bytes()
    assert data[:4] == b"\0asm"
    at = 8
    while at < len(data):
        section = data[at]
        size, at = _leb128(data, at + 1)
        end = at + size
        if section == 0:
            length, inner = _leb128(data, at)
            name = data[inner : inner + length].decode()
            inner += length
            if name == "target_features":
                count, inner = _leb128(data, inner)
                features = set()
                for _ in range(count):
                    prefix = chr(data[inner])
                    length, inner = _leb128(data, inner + 1)
                    features.add(prefix + data[inner : inner + length].decode())
                    inner += length
                return features
        at = end
    raise AssertionError(f"{module} has no target_features section")


def recording_clang(where: Path, log: Path) -> Path:
    """A ``clang`` that appends its arguments (one per line, then a blank line) to ``log``."""
    clang = require_tool("clang")
    wrapper = where / "clang-recorder"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'for arg in "$@"; do printf "%s\\n" "$arg" >> "{log}"; done\n'
        f'printf "\\n" >> "{log}"\n'
        f'exec "{clang}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def flags(log: Path) -> list[str]:
    """The flags of the one compiler call in ``log``, without paths (output, sources, -I)."""
    (call,) = [c for c in log.read_text().split("\n\n") if c.strip()]
    args = call.splitlines()
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "-o":
            skip = True
            continue
        if arg.startswith("-I") or arg.endswith(".c"):
            continue
        kept.append(arg)
    return kept


def test_a_scaffolded_wasm_plugin_is_compiled_like_the_sdk_built_one(tmp_path: Path) -> None:
    # the scaffold, built by its build.sh
    scaffold_log = tmp_path / "scaffold.log"
    scaffold = create_plugin("flags-c", "vectorizer", "wasm", "c", parent=tmp_path)
    build = run_build(
        scaffold.directory, env={"CLANG": str(recording_clang(tmp_path, scaffold_log))}
    )
    assert build.ok, build.output
    vendored = scaffold.directory / "sdk" / "c" / "build-plugin.sh"
    assert vendored.read_bytes() == (ROOT / "sdk" / "c" / "build-plugin.sh").read_bytes()
    # an SDK-built plugin (the c-vectorizer example's source), by the SDK's script itself
    sdk_log = tmp_path / "sdk.log"
    out = tmp_path / "sdk-built"
    env = {
        **os.environ,
        "CLANG": str(recording_clang(tmp_path, sdk_log)),
        "WV_TARGETS": "wasm",
    }
    env.pop("WASM_FLAGS", None)
    done = subprocess.run(
        ["sh", str(ROOT / "sdk" / "c" / "build-plugin.sh"), str(out), str(C_EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # the same command-line flags ...
    scaffold_flags, sdk_flags = flags(scaffold_log), flags(sdk_log)
    assert scaffold_flags == sdk_flags
    assert "--target=wasm32-wasi" in sdk_flags and "-msimd128" in sdk_flags
    # ... and the flags' features in the generated code of both (a source may add some of
    # its own: the example's exported globals are +mutable-globals)
    features = target_features(scaffold.directory / "plugin.wasm")
    assert {"+simd128", "+bulk-memory"} <= features
    assert {"+simd128", "+bulk-memory"} <= target_features(out.with_suffix(".wasm"))
    # the scaffold's own source built by the SDK's script directly: the same features
    direct = tmp_path / "direct"
    source = scaffold.directory / "src" / "flags_c.c"
    done = subprocess.run(
        ["sh", str(ROOT / "sdk" / "c" / "build-plugin.sh"), str(direct), str(source)],
        env={**env, "CLANG": require_tool("clang")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert target_features(direct.with_suffix(".wasm")) == features


def test_a_scaffolded_native_c_plugin_uses_the_sdk_script(tmp_path: Path) -> None:
    scaffold = create_plugin("flags-native", "reranker", "native", "c", parent=tmp_path)
    script = (scaffold.directory / "build.sh").read_text()
    assert "WV_TARGETS=native sh sdk/c/build-plugin.sh" in script
    assert "-O2" not in script  # no flags of its own


@pytest.mark.parametrize("runtime", ["wasm", "native"])
def test_a_scaffolded_rust_plugin_builds_through_the_sdk_script(
    tmp_path: Path, runtime: str
) -> None:
    scaffold = create_plugin(f"flags-rust-{runtime}", "transformer", runtime, "rust", tmp_path)
    script = (scaffold.directory / "build.sh").read_text()
    assert f"sh sdk/rust/build-plugin.sh {runtime} " in script
    assert "build --offline" not in script and "RUSTFLAGS" not in script  # no flags of its own
    vendored = scaffold.directory / "sdk" / "rust" / "build-plugin.sh"
    assert vendored.read_bytes() == (ROOT / "sdk" / "rust" / "build-plugin.sh").read_bytes()
    cargo_toml = (scaffold.directory / "Cargo.toml").read_text()
    assert "[profile.release]" not in cargo_toml  # the profile is the SDK script's
