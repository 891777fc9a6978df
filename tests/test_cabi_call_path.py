"""The C-ABI call path (issue 12): packing, the single-text hook over the batch export,
outputs copied once, and the example kernel's unrolled loop in the generated wasm."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cabi.helpers import TOOLCHAIN_HINT, build_examples

from weaviate_ext import InvalidInput, PluginManager
from weaviate_ext.bridges.cabi import abi


def _reference(texts: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)


@pytest.mark.parametrize(
    "texts",
    [
        [],
        [""],
        ["one"],
        ["a", "bc", ""],
        ["ascii", "é non-ascii", "日本"],
        ["x" * 255, "y" * 256, "z"],  # the prefix table ends at 255 bytes
        [f"text {i}" for i in range(100)],
    ],
)
def test_pack_strings_matches_the_packed_format(texts: list[str]) -> None:
    assert abi.pack_strings(texts) == _reference(texts)
    if len(texts) == 1:
        assert abi.pack_one(texts[0]) == _reference(texts)


def test_pack_strings_refuses_text_without_utf8() -> None:
    with pytest.raises(InvalidInput, match="texts is not valid Unicode text"):
        abi.pack_strings(["fine", "\ud800"])
    with pytest.raises(InvalidInput, match="text is not valid Unicode text"):
        abi.pack_one("\udfff")


@pytest.fixture(scope="module")
def examples() -> Path:
    return build_examples()


@pytest.fixture
def manager(examples: Path) -> Iterator[PluginManager]:
    with PluginManager(discover=False) as manager:
        manager.load(examples / "c-vectorizer" / "plugin.yaml")
        manager.load(examples / "c-vectorizer" / "plugin-native.yaml")
        yield manager


@pytest.mark.parametrize("name", ["c-embedder", "c-embedder-native"])
def test_single_text_equals_its_batch_row_and_owns_its_data(
    name: str, manager: PluginManager
) -> None:
    handle = manager.get_vectorizer(name)
    assert manager.registry.get_plugin(name).vectorize_text  # the hook over the batch export
    first = handle.vectorize_text("Hello vectors")
    kept = first.copy()
    batch = handle.vectorize_batch(["Hello vectors", "something else entirely"])
    handle.vectorize_text("another text, another output in the plugin's buffer")
    assert first.shape == (768,) and first.dtype == np.float32
    assert np.array_equal(first, batch[0])
    assert np.array_equal(first, kept), "a result is a copy, not a view of plugin memory"
    assert first.flags.writeable and first.flags.owndata
    assert batch.flags.writeable


def test_example_kernel_loop_is_unrolled_in_the_wasm(examples: Path) -> None:
    """WV_UNROLL(4) takes effect for wasm32: the trigram loop's body (three FNV-1a
    multiplies a trigram) is there four times, besides the last trigram and the
    remainder loop (-funroll-loops does not do this; docs/performance.md)."""
    if shutil.which("wasm2wat") is None:
        pytest.fail(f"wasm2wat (Debian's wabt) is missing: {TOOLCHAIN_HINT}", pytrace=False)
    wat = subprocess.run(
        ["wasm2wat", str(examples / "c-vectorizer" / "plugin.wasm")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    start = wat.index("(func $embed ")
    end = wat.index("\n  (func ", start + 1)
    body = wat[start:end]
    assert body.count("i32.const 16777619") >= 3 * 4 + 3
