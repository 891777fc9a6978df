"""``text-chunker``: one text in, the list of its overlapping chunks out.

See :mod:`weaviate_ext_text_transformers.chunking` for how units and chunks are made.
An empty or all-whitespace text gives ``[]`` (no chunk); a text shorter than ``size``
units gives one chunk. A non-``str`` item is ``InvalidInput``. In
``manager.pipeline(..., "text-chunker", ...)`` each chunk becomes an item of the next
stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weaviate_ext import ConfigError, Deadline, InvalidInput, Manifest, PluginConfig, hookimpl
from weaviate_ext_text_transformers.chunking import (
    Splitter,
    chunk_text,
    sentence_spans,
    word_spans,
    wordpiece_splitter,
)

MODES = ("words", "sentences", "wordpiece")


def load_wordpiece(tokenizer_path: str) -> Splitter:
    """The splitter of ``tokenizer_path``, or of all-MiniLM-L6-v2's tokenizer when empty."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ConfigError(
            "config key 'mode': wordpiece needs the tokenizers package: "
            "pip install 'weaviate-ext-text-transformers[wordpiece]'"
        ) from None
    if not tokenizer_path:
        try:
            from weaviate_ext_minilm_vectorizer.encoder import packaged_tokenizer_path
        except ImportError:
            raise ConfigError(
                "config key 'tokenizer_path': wordpiece mode needs a tokenizer.json "
                "(or the weaviate-ext-minilm-vectorizer package, for all-MiniLM-L6-v2's)"
            ) from None
        path = packaged_tokenizer_path()
    else:
        path = Path(tokenizer_path)
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ConfigError(f"config key 'tokenizer_path': cannot load {path}: {exc}") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return wordpiece_splitter(tokenizer)


class TextChunker:
    """The plugin object: ``transform`` and ``transform_batch`` of texts into chunk lists."""

    def __init__(self) -> None:
        self.mode = "words"
        self.size = 128
        self.overlap = 16
        self.split: Splitter = word_spans

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read and check ``mode``, ``size``, ``overlap`` (and ``tokenizer_path``)."""
        mode = config.get_string("mode")
        size = config.get_int("size")
        overlap = config.get_int("overlap")
        if mode not in MODES:
            raise ConfigError(f"config key 'mode' must be one of {', '.join(MODES)}, got {mode!r}")
        if size < 1:
            raise ConfigError(f"config key 'size' must be at least 1, got {size}")
        if not 0 <= overlap < size:
            raise ConfigError(
                f"config key 'overlap' must be at least 0 and less than size ({size}), "
                f"got {overlap}"
            )
        if mode == "wordpiece":
            self.split = load_wordpiece(config.get_string("tokenizer_path"))
        else:
            self.split = sentence_spans if mode == "sentences" else word_spans
        self.mode, self.size, self.overlap = mode, size, overlap

    def _chunks(self, data: Any, where: str) -> list[str]:
        if not isinstance(data, str):
            raise InvalidInput(f"{where} must be str, got {type(data).__name__}")
        return chunk_text(data, self.split, self.size, self.overlap)

    @hookimpl
    def transform(self, data: Any) -> list[str]:
        """The chunks of one text."""
        return self._chunks(data, "data")

    @hookimpl
    def transform_batch(self, items: Sequence[Any], deadline: Deadline) -> list[list[str]]:
        """The chunk list of each text, in order."""
        out = []
        for i, item in enumerate(items):
            deadline.check()
            out.append(self._chunks(item, f"items[{i}]"))
        return out
