"""Native shared libraries are checked before the host maps them (issue 11).

A damaged, foreign or hostile ``.so`` used to kill the host inside ``dlopen``
(``SIGBUS`` for a truncated file) or fail with a misleading "No such file or
directory". Each case here must be a clear :class:`PluginLoadError`, the test process
(the host) must survive it, and a native plugin loaded before it in the same manager
must keep answering. Libraries that must fail while being loaded are compiled here with
gcc into ``tmp_path``; the others are damaged copies of a built example.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cabi.helpers import build_examples, fault_manifest, require_toolchain
from click.testing import CliRunner

from weaviate_ext import PluginLoadError, PluginManager
from weaviate_ext.bridges.cabi import elfcheck, probe
from weaviate_ext.cli import cli

EM_X86_64 = 62
EM_AARCH64 = 183


@pytest.fixture(scope="module")
def examples() -> Path:
    return build_examples()


@pytest.fixture
def example_so(examples: Path) -> Path:
    """The built c-vectorizer example library (a vectorizer, 16+ dimensions)."""
    return examples / "c-vectorizer" / "plugin.so"


@pytest.fixture(autouse=True)
def fresh_verdicts() -> Iterator[None]:
    """Every test starts without cached probe verdicts, so probes can be counted."""
    probe.clear_cache()
    yield
    probe.clear_cache()


@pytest.fixture
def serving(examples: Path) -> Iterator[PluginManager]:
    """A manager that already serves a native plugin (the whitespace normaliser)."""
    with PluginManager(discover=False) as manager:
        manager.load(examples / "c-transformer" / "plugin-native.yaml")
        assert_still_serving(manager)
        yield manager


def assert_still_serving(manager: PluginManager) -> None:
    """The plugin loaded first still answers, through the same manager."""
    assert manager.get_transformer("whitespace-normalizer-native").transform("  A   B ") == "a b"


def is_mapped(path: Path) -> bool:
    """Whether this process has ``path`` mapped (Linux; ``False`` elsewhere)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return False
    return str(path.resolve()) in maps.read_text()


def load_library(
    manager: PluginManager, directory: Path, binary: Path, name: str = "suspect"
) -> None:
    """Load ``binary`` (in ``directory``) as a native vectorizer named ``name``."""
    manifest = fault_manifest(directory, binary, runtime="native", memory=None, name=name)
    manager.load(manifest)


def compile_library(directory: Path, name: str, source: str) -> Path:
    """Compile ``source`` with gcc into ``directory/name.so`` (-O0: faults stay faults)."""
    require_toolchain()
    c_file = directory / f"{name}.c"
    c_file.write_text(source)
    out = directory / f"{name}.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O0", "-o", str(out), str(c_file)],
        check=True,
        capture_output=True,
    )
    return out


def dynamic_segment_offset(data: bytes) -> int:
    """File offset of the PT_DYNAMIC segment of a 64-bit little-endian ELF file."""
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        p_type, _, p_offset = struct.unpack_from("<IIQ", data, phoff + index * phentsize)
        if p_type == 2:  # PT_DYNAMIC
            return int(p_offset)
    raise AssertionError("no PT_DYNAMIC segment")


# -- the header check: refused before anything is mapped or probed ---------------------


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        ("half", r"is truncated or damaged \(the file has \d+ bytes, but its \w+ segment"),
        ("tail", r"is truncated or damaged \(the file has \d+ bytes, but its section header"),
        ("header", r"is truncated or damaged \(the file has \d+ bytes, but its program header"),
    ],
)
def test_truncated_copy_of_a_built_library_is_a_load_error(
    serving: PluginManager, tmp_path: Path, example_so: Path, cut: str, expected: str
) -> None:
    data = example_so.read_bytes()
    size = {"half": len(data) // 2, "tail": len(data) - 10, "header": 100}[cut]
    binary = tmp_path / "plugin.so"
    binary.write_bytes(data[:size])
    started = probe.probes_started()
    with pytest.raises(PluginLoadError, match="cannot load the shared library: spec.binary") as exc:
        load_library(serving, tmp_path, binary)
    assert exc.match(expected)
    assert probe.probes_started() == started  # refused by the header, never probed
    assert not is_mapped(binary)
    assert_still_serving(serving)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not an ELF file at all", r"is not an ELF file \(it starts with b'not an E'\)"),
        (b"\0asm\1\0\0\0", "is not an ELF file .it is a WebAssembly module: use runtime: wasm"),
        (b"", r"is not an ELF file \(it is empty\)"),
    ],
)
def test_a_file_that_is_not_elf_is_a_load_error(
    serving: PluginManager, tmp_path: Path, content: bytes, expected: str
) -> None:
    binary = tmp_path / "plugin.so"
    binary.write_bytes(content)
    started = probe.probes_started()
    with pytest.raises(PluginLoadError, match=expected):
        load_library(serving, tmp_path, binary)
    assert probe.probes_started() == started
    assert_still_serving(serving)


def test_a_library_for_another_architecture_is_named_as_such(
    serving: PluginManager, tmp_path: Path, example_so: Path
) -> None:
    """Not "No such file or directory" (what dlopen says): the file's and the host's
    machines, side by side."""
    host = elfcheck.host_elf()
    assert host is not None
    other = EM_X86_64 if host.machine == "EM_AARCH64" else EM_AARCH64
    other_name = "x86-64" if other == EM_X86_64 else "AArch64"
    data = bytearray(example_so.read_bytes())
    data[18:20] = other.to_bytes(2, "little")  # e_machine
    binary = tmp_path / "plugin.so"
    binary.write_bytes(bytes(data))
    message = f"spec.binary plugin.so is an ELF shared library for {other_name}; this host is "
    with pytest.raises(PluginLoadError, match=message + host.machine_name) as exc:
        load_library(serving, tmp_path, binary)
    assert "No such file" not in str(exc.value)
    assert_still_serving(serving)


def test_an_object_file_is_not_a_shared_library(serving: PluginManager, tmp_path: Path) -> None:
    require_toolchain()
    source = tmp_path / "obj.c"
    source.write_text("int wv_abi_version(void) { return 1; }\n")
    binary = tmp_path / "plugin.so"
    subprocess.run(["gcc", "-c", "-o", str(binary), str(source)], check=True)
    with pytest.raises(PluginLoadError, match=r"is an ELF object file, not a shared library"):
        load_library(serving, tmp_path, binary)
    assert_still_serving(serving)


# -- the probe: a library that fails while being loaded fails in a child ----------------

CONSTRUCTORS = {
    "sigbus": (
        "#include <signal.h>\n"
        "__attribute__((constructor)) static void boom(void) { raise(SIGBUS); }\n",
        "the library crashed the probe process with SIGBUS while being loaded",
    ),
    "segfault": (
        "__attribute__((constructor)) static void boom(void) {\n"
        "    volatile int *volatile nowhere = 0;\n"
        "    *nowhere = 1;\n"
        "}\n",
        "the library crashed the probe process with SIGSEGV while being loaded",
    ),
    "exit": (
        "#include <unistd.h>\n"
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void leave(void) {\n"
        '    fprintf(stderr, "constructor gives up\\n");\n'
        "    _exit(4);\n"
        "}\n",
        r"ended the probe process \(exit status 4\) while being loaded "
        r"\(it printed: constructor gives up\)",
    ),
}


@pytest.mark.parametrize("fault", sorted(CONSTRUCTORS))
def test_a_constructor_that_crashes_is_a_load_error_and_the_host_survives(
    serving: PluginManager, tmp_path: Path, fault: str
) -> None:
    source, expected = CONSTRUCTORS[fault]
    binary = compile_library(tmp_path, fault, source)
    started = probe.probes_started()
    with pytest.raises(PluginLoadError, match=expected) as exc:
        load_library(serving, tmp_path, binary)
    assert "the host did not map it" in str(exc.value)
    assert probe.probes_started() == started + 1
    assert not is_mapped(binary)
    assert serving.names() == ("whitespace-normalizer-native",)
    assert_still_serving(serving)


def test_a_constructor_that_never_returns_is_a_load_error(
    serving: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = compile_library(
        tmp_path,
        "spin",
        "__attribute__((constructor)) static void spin(void) {\n"
        "    for (volatile unsigned long i = 0;; i++) {}\n"
        "}\n",
    )
    monkeypatch.setenv(probe.TIMEOUT_ENV, "2")
    with pytest.raises(PluginLoadError, match="probe process did not finish within 2 s"):
        load_library(serving, tmp_path, binary)
    assert not is_mapped(binary)
    assert_still_serving(serving)
    # a timeout is not cached (it may have been a slow machine): the next load probes again
    started = probe.probes_started()
    with pytest.raises(PluginLoadError, match="did not finish"):
        load_library(serving, tmp_path, binary, name="again")
    assert probe.probes_started() == started + 1


def test_a_truncated_library_past_the_header_check_crashes_only_the_probe(
    serving: PluginManager,
    tmp_path: Path,
    example_so: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defence in depth: with the header check out of the way, the SIGBUS that used to
    kill the host (the dynamic section lies on a page past the end of the file) kills
    the probe process instead."""
    data = example_so.read_bytes()
    cut = dynamic_segment_offset(data) // 4096 * 4096
    assert 0 < cut < len(data)
    binary = tmp_path / "plugin.so"
    binary.write_bytes(data[:cut])
    monkeypatch.setattr(elfcheck, "check_shared_library", lambda data: None)
    with pytest.raises(PluginLoadError, match="crashed the probe process with SIGBUS"):
        load_library(serving, tmp_path, binary)
    assert not is_mapped(binary)
    assert_still_serving(serving)


def test_the_probe_does_not_inherit_secrets(
    serving: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The constructor ends the probe if it can see the variable; it cannot, so the
    probe goes on and refuses the library for what it lacks (no export is defined),
    before the host maps it."""
    binary = compile_library(
        tmp_path,
        "peek",
        "#include <stdlib.h>\n#include <unistd.h>\n"
        "__attribute__((constructor)) static void peek(void) {\n"
        '    if (getenv("WV_PROBE_SECRET")) _exit(7);\n'
        "}\n",
    )
    monkeypatch.setenv("WV_PROBE_SECRET", "hunter2")
    with pytest.raises(PluginLoadError, match="does not export wv_abi_version") as exc:
        load_library(serving, tmp_path, binary)
    assert "exit status 7" not in str(exc.value)
    assert not is_mapped(binary)
    assert_still_serving(serving)


# -- the verdict cache --------------------------------------------------------------------


def transformer_copy(examples: Path, directory: Path, name: str) -> Path:
    """A copy of the native whitespace normaliser (library and manifest) named ``name``
    in ``directory``; returns the manifest."""
    source = examples / "c-transformer"
    directory.mkdir(exist_ok=True)
    shutil.copy(source / "plugin.so", directory / "plugin.so")
    text = (source / "plugin-native.yaml").read_text()
    manifest = directory / f"{name}.yaml"
    manifest.write_text(text.replace("name: whitespace-normalizer-native", f"name: {name}"))
    return manifest


def test_a_second_load_of_the_same_file_does_not_probe_again(
    tmp_path: Path, examples: Path
) -> None:
    """Verdicts are cached by sha256: two manifests naming copies of one library, and a
    reload, cost one probe together."""
    one = transformer_copy(examples, tmp_path / "a", "one")
    two = transformer_copy(examples, tmp_path / "b", "two")
    started = probe.probes_started()
    with PluginManager(discover=False) as manager:
        manager.load(one)
        assert probe.probes_started() == started + 1
        manager.load(two)
        manager.reload("one")
        assert probe.probes_started() == started + 1
        assert manager.get_transformer("one").transform("  X  Y ") == "x y"
        assert manager.get_transformer("two").transform("  X  Y ") == "x y"


def test_a_failed_verdict_is_cached_too(serving: PluginManager, tmp_path: Path) -> None:
    binary = compile_library(tmp_path, "bus", CONSTRUCTORS["sigbus"][0])
    started = probe.probes_started()
    for name in ("bus-a", "bus-b"):
        with pytest.raises(PluginLoadError, match="SIGBUS"):
            load_library(serving, tmp_path, binary, name=name)
    assert probe.probes_started() == started + 1
    assert_still_serving(serving)


def test_a_changed_file_is_probed_again(tmp_path: Path, examples: Path) -> None:
    manifest = transformer_copy(examples, tmp_path, "v1")
    binary = tmp_path / "plugin.so"
    started = probe.probes_started()
    with PluginManager(discover=False) as manager:
        manager.load(manifest)
        replacement = tmp_path / "next.so"
        replacement.write_bytes(binary.read_bytes() + b"\0" * 16)  # same code, new sha256
        os.replace(replacement, binary)
        manager.reload("v1")
        assert manager.get_transformer("v1").transform(" Z ") == "z"
    assert probe.probes_started() == started + 2


# -- weaviate-ext validate ----------------------------------------------------------------


def test_validate_reports_a_bad_native_binary_at_the_line_of_spec_binary(
    tmp_path: Path, examples: Path, example_so: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEAVIATE_EXT_PLUGINS", raising=False)
    manifest = tmp_path / "plugin.yaml"
    text = (examples / "c-vectorizer" / "plugin-native.yaml").read_text()
    manifest.write_text(text)
    line = next(
        n for n, row in enumerate(text.splitlines(), 1) if row.strip().startswith("binary:")
    )
    binary = tmp_path / "plugin.so"

    def validate() -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--no-discover", "validate", str(manifest)])
        assert "Traceback" not in result.output
        return result.exit_code, result.stdout

    shutil.copy(example_so, binary)
    code, out = validate()
    assert code == 0, out
    assert out.strip().endswith("ok (c-embedder-native 1.0.0, vectorizer, native)")

    binary.write_bytes(example_so.read_bytes()[:4000])
    code, out = validate()
    assert code == 1
    assert out.startswith(f"{manifest}:{line}: spec.binary: ./plugin.so is truncated or damaged")

    binary.write_bytes(b"#!/bin/sh\necho hi\n")
    code, out = validate()
    assert code == 1
    assert f"{manifest}:{line}: spec.binary: ./plugin.so is not an ELF file (it is a script)" in out
