"""``wv_vectorize_into`` (issue 12): the C-ABI vectorizer fast path.

A vectorizer that declares ``capabilities.dimensions`` and exports
``wv_vectorize_into`` gets its texts joined by 0xFF and writes its vectors into the
host's array. These tests check the join, that the fast path and the packed path
(``wv_vectorize_batch``) give the same vectors, that the SDK's splitter finds every
separator (the wasm build scans 16 bytes at a time), that malformed input is refused
by the SDK, and that faults on the fast path (endless loop, memory bomb, trap, error)
are handled as on the packed path.
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from cabi.helpers import build_examples, build_faults, fault_manifest

from weaviate_ext import (
    DeadlineExceeded,
    InvalidInput,
    PluginCallError,
    PluginCrashed,
    PluginManager,
    ResourceLimitExceeded,
)
from weaviate_ext.bridges import native
from weaviate_ext.bridges.cabi import abi
from weaviate_ext.inputs import AsciiTexts

TEXTS = [
    "Hello vectors",
    "",
    "é non-ascii, 日本語",
    "nul \x00 inside",
    "x" * 300,
    "the last one",
]


@pytest.mark.parametrize(
    "texts",
    [[], [""], ["one"], ["a", "", "bc"], ["ascii", "é", "日本"], TEXTS],
)
def test_join_texts_is_utf8_joined_by_0xff(texts: list[str]) -> None:
    expected = b"\xff".join(t.encode("utf-8") for t in texts)
    assert abi.join_texts(texts) == expected
    if all(t.isascii() for t in texts):
        assert abi.join_texts(AsciiTexts(texts)) == expected


def test_join_texts_refuses_what_utf8_cannot_encode() -> None:
    with pytest.raises(InvalidInput, match=r"texts\[1\] is not valid Unicode text"):
        abi.join_texts(["fine", "\ud800"])
    with pytest.raises(InvalidInput, match=r"texts\[0\] must be str, got int"):
        abi.join_texts([3])  # type: ignore[list-item]


@pytest.fixture(scope="module")
def examples() -> Path:
    return build_examples()


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.getbasetemp() / "wasm-cache"
    monkeypatch.setenv("WEAVIATE_EXT_CACHE_DIR", str(path))
    return path


def _without_dimensions(manifest: Path, tmp_path: Path, name: str) -> Path:
    """A copy of an example's manifest, renamed and without ``capabilities.dimensions``
    (so the plugin is called through ``wv_vectorize_batch``), next to the original."""
    data = yaml.safe_load(manifest.read_text())
    data["metadata"]["name"] = name
    del data["spec"]["capabilities"]["dimensions"]
    copy = manifest.parent / f".{name}-{tmp_path.name}.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


@pytest.fixture
def both_paths(examples: Path, tmp_path: Path) -> Iterator[PluginManager]:
    """The c-vectorizer example as wasm and native, each on the fast path and (a copy
    without dimensions) on the packed path."""
    directory = examples / "c-vectorizer"
    copies = [
        _without_dimensions(directory / "plugin.yaml", tmp_path, "packed-wasm"),
        _without_dimensions(directory / "plugin-native.yaml", tmp_path, "packed-native"),
    ]
    try:
        with PluginManager(discover=False) as manager:
            manager.load(directory / "plugin.yaml")
            manager.load(directory / "plugin-native.yaml")
            for copy in copies:
                manager.load(copy)
            yield manager
    finally:
        for copy in copies:
            copy.unlink()


def _on_fast_path(manager: PluginManager, name: str) -> bool:
    """Whether the plugin object's ``vectorize_batch`` is the backend's function (the
    fast path) rather than the class's method (the packed path)."""
    return not inspect.ismethod(manager.registry.get_plugin(name).vectorize_batch)


@pytest.mark.parametrize(
    ("fast", "packed"), [("c-embedder", "packed-wasm"), ("c-embedder-native", "packed-native")]
)
def test_fast_and_packed_paths_give_the_same_vectors(
    both_paths: PluginManager, fast: str, packed: str
) -> None:
    assert _on_fast_path(both_paths, fast)
    assert not _on_fast_path(both_paths, packed)
    fast_handle, packed_handle = both_paths.get_vectorizer(fast), both_paths.get_vectorizer(packed)
    many = [f"text number {i} {'é' * (i % 3)}" for i in range(150)]  # two chunks of 100
    for texts in (TEXTS, many, ["just one"]):
        matrix = fast_handle.vectorize_batch(texts)
        assert matrix.shape == (len(texts), 768) and matrix.dtype == np.float32
        assert matrix.flags.owndata or matrix.base is not None
        assert np.array_equal(matrix, packed_handle.vectorize_batch(texts))
    for text in TEXTS:
        vector = fast_handle.vectorize_text(text)
        assert vector.shape == (768,) and vector.flags.writeable
        assert np.array_equal(vector, packed_handle.vectorize_text(text))


@pytest.mark.parametrize("name", ["c-embedder", "c-embedder-native"])
def test_every_separator_is_found_whatever_its_offset(both_paths: PluginManager, name: str) -> None:
    """Texts of 0..70 bytes put the separators at every offset of the wasm build's
    16-byte SIMD steps and in its byte-by-byte tail: each row equals its single call."""
    handle = both_paths.get_vectorizer(name)
    texts = ["".join(chr(97 + (i * 7 + k) % 26) for k in range(i)) for i in range(71)]
    matrix = handle.vectorize_batch(texts)
    for row, text in zip(matrix, texts, strict=True):
        assert np.array_equal(row, handle.vectorize_text(text)), repr(text)


def test_the_sdk_refuses_malformed_joined_texts(examples: Path) -> None:
    """wv_sdk_vectorize_into (the C SDK) checks the count of texts against the
    separators and the size of the host's buffer; called here without the host."""
    lib = native.ffi.dlopen(str((examples / "c-vectorizer" / "plugin.so").resolve()))
    config = b'{"modelPath": "build/model/model.bin"}'
    assert lib.wv_init(config, len(config)) == 0
    out = np.empty(3 * 768, np.float32)
    buffer = native.ffi.from_buffer(out)
    message_ptr = native.ffi.new("const uint8_t **")
    message_len = native.ffi.new("uint32_t *")

    def call(texts: bytes, count: int, floats: int) -> tuple[int, str]:
        status = lib.wv_vectorize_into(texts, len(texts), count, buffer, floats)
        lib.wv_last_error(message_ptr, message_len)
        text = bytes(native.ffi.buffer(message_ptr[0], message_len[0])).decode()
        return int(status), text

    assert call(b"a\xffb\xffc", 3, 3 * 768)[0] == abi.WV_OK
    status, message = call(b"a\xffb", 3, 3 * 768)
    assert status == abi.WV_ERR_INVALID and "3 texts announced, 2 sent" in message
    status, message = call(b"a\xffb\xffc\xffd", 3, 3 * 768)
    assert status == abi.WV_ERR_INVALID and "more than the 3 texts announced" in message
    status, message = call(b"a\xffb\xffc", 3, 2 * 768)
    assert status == abi.WV_ERR_INVALID and "do not fill 1536 floats" in message


# -- faults on the fast path ------------------------------------------------------------


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_faults(tmp_path_factory.mktemp("cabi-into"))


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    with PluginManager(discover=False) as manager:
        yield manager


def _load(manager: PluginManager, faults: Path, tmp_path: Path, runtime: str) -> str:
    suffix = "wasm" if runtime == "wasm" else "so"
    manifest = fault_manifest(
        tmp_path, faults / f"faults_into.{suffix}", runtime=runtime, name=f"into-{runtime}"
    )
    name = str(manager.load(manifest).name)
    assert _on_fast_path(manager, name)
    return name


def _still_serving(manager: PluginManager, name: str) -> None:
    handle = manager.get_vectorizer(name)
    assert handle.vectorize_text("good text").shape == (16,)
    assert handle.vectorize_batch(["a", "b"]).shape == (2, 16)


def test_wasm_endless_loop_stops_at_the_deadline(
    manager: PluginManager, faults: Path, tmp_path: Path
) -> None:
    name = _load(manager, faults, tmp_path, "wasm")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="interrupted at its deadline of 1s"):
        manager.get_vectorizer(name).vectorize_batch(["a", "loop"])
    assert time.monotonic() - started < 1 + 2
    _still_serving(manager, name)


def test_wasm_memory_bomb_and_trap(manager: PluginManager, faults: Path, tmp_path: Path) -> None:
    name = _load(manager, faults, tmp_path, "wasm")
    handle = manager.get_vectorizer(name)
    with pytest.raises(ResourceLimitExceeded, match="memory limit of 67108864 bytes"):
        handle.vectorize_text("bomb")
    _still_serving(manager, name)
    with pytest.raises(PluginCrashed, match=r"trapped: wasm trap: .*; the instance was replaced"):
        handle.vectorize_batch(["a", "trap", "b"])
    _still_serving(manager, name)


@pytest.mark.parametrize("runtime", ["wasm", "native"])
def test_an_error_status_names_the_plugin_and_hook(
    manager: PluginManager, faults: Path, tmp_path: Path, runtime: str
) -> None:
    name = _load(manager, faults, tmp_path, runtime)
    handle = manager.get_vectorizer(name)
    for call in (
        lambda: handle.vectorize_text("fail"),
        lambda: handle.vectorize_batch(["a", "fail"]),
    ):
        with pytest.raises(PluginCallError) as info:
            call()
        assert (info.value.plugin, info.value.hook) == (name, "vectorize_batch")
        assert "asked to fail" in str(info.value)
    _still_serving(manager, name)


def test_the_faults_binary_has_both_exports(faults: Path) -> None:
    """The packed-path fault plugin (tests/test_wasm.py, tests/test_native.py) has no
    wv_vectorize_into: those tests keep covering wv_vectorize_batch."""
    assert shutil.which("nm") is not None

    def exports(path: Path) -> str:
        done = subprocess.run(["nm", "-D", str(path)], capture_output=True, text=True, check=True)
        return done.stdout

    assert "wv_vectorize_into" not in exports(faults / "faults.so")
    assert "wv_vectorize_into" in exports(faults / "faults_into.so")
