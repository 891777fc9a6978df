"""unicode-normalizer through the framework: each cleaning step, options, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weaviate_ext import InvalidInput, PluginLoadError, PluginManager, TransformerHandle
from weaviate_ext.testing import check_plugin

SAMPLES = [
    "\ufb01le \uff21\uff22\uff23 \u2460 caf\u0065\u0301",  # ligature, full width, ①, e + acute
    "  tabs\tand\n\nnewlines \u00a0 no-break  ",
    "bell\x07 nul\x00 esc\x1b[0m del\x7f c1\x9b",
    "emoji 👩\u200d💻 and flags 🇩🇪",
    "MiXeD CaSe İstanbul",
]


def load(manager: PluginManager, manifest: Path, **config: Any) -> TransformerHandle:
    """The normalizer loaded with ``config``."""
    handle: TransformerHandle = manager.load(manifest, config=config)
    return handle


def test_conformance(plugin_manager: PluginManager, normalizer_manifest: Path) -> None:
    check_plugin(load(plugin_manager, normalizer_manifest)).raise_for_failures()


def test_default_cleaning(plugin_manager: PluginManager, normalizer_manifest: Path) -> None:
    normalizer = load(plugin_manager, normalizer_manifest)
    assert normalizer.transform_batch(SAMPLES) == [
        "file ABC 1 caf\u00e9",
        "tabs and newlines no-break",
        "bell nul esc[0m del c1",
        "emoji 👩\u200d💻 and flags 🇩🇪",  # the zero-width joiner stays
        "MiXeD CaSe İstanbul",
    ]


def test_idempotent(plugin_manager: PluginManager, normalizer_manifest: Path) -> None:
    normalizer = load(plugin_manager, normalizer_manifest, lowercase=True)
    once = normalizer.transform_batch(SAMPLES)
    assert normalizer.transform_batch(once) == once


def test_options(plugin_manager: PluginManager, normalizer_manifest: Path) -> None:
    lower = load(plugin_manager, normalizer_manifest, lowercase=True)
    assert lower.transform("MiXeD \uff21") == "mixed a"
    plugin_manager.unload("unicode-normalizer")
    raw = load(
        plugin_manager, normalizer_manifest, form="none", strip_control=False,
        collapse_whitespace=False,
    )  # fmt: skip
    assert raw.transform(SAMPLES[2]) == SAMPLES[2]
    assert raw.transform("\ufb01  x") == "\ufb01  x"
    plugin_manager.unload("unicode-normalizer")
    nfd = load(plugin_manager, normalizer_manifest, form="NFD")
    assert nfd.transform("caf\u00e9") == "cafe\u0301"
    plugin_manager.unload("unicode-normalizer")
    lines = load(plugin_manager, normalizer_manifest, keep_newlines=True)
    text = "  First one.  \n\n\n  Second\tone.\r\nSame paragraph.\n \n"
    assert lines.transform(text) == "First one.\n\nSecond one.\nSame paragraph."


def test_edge_cases(plugin_manager: PluginManager, normalizer_manifest: Path) -> None:
    normalizer = load(plugin_manager, normalizer_manifest)
    assert normalizer.transform("") == ""
    assert normalizer.transform(" \t\n\x00 ") == ""
    assert normalizer.transform_batch([]) == []
    long = "word\u00a0" * 20_000
    assert normalizer.transform(long) == ("word " * 20_000).strip()


def test_bad_config_and_input(plugin_manager: PluginManager, normalizer_manifest: Path) -> None:
    with pytest.raises(PluginLoadError, match="form"):
        load(plugin_manager, normalizer_manifest, form="NFX")
    normalizer = load(plugin_manager, normalizer_manifest)
    bad: Any = b"bytes"
    with pytest.raises(InvalidInput):
        normalizer.transform(bad)
    with pytest.raises(InvalidInput, match=r"items\[0\]"):
        normalizer.transform_batch([bad])
