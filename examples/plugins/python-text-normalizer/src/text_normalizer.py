"""``text-normalizer``: clean text before it is vectorized or indexed.

In this order:

1. Unicode NFKC: compatibility forms become their plain equivalents (``ﬁ`` -> ``fi``,
   full-width letters (U+FF21...) -> ASCII, no-break space -> space, ``①`` -> ``1``) and combining
   marks are composed (``e`` + U+0301 -> ``é``);
2. control characters (category ``Cc``: NUL, BEL, ESC, DEL, C1 controls ...) are
   removed, except those that are whitespace (tab, newline, ...), which step 3 handles;
3. every run of whitespace becomes one space, and leading/trailing whitespace goes;
4. with ``lowercase: true`` (the default) the text is lower-cased (``str.lower``).

Format characters such as the zero-width joiner are kept: emoji sequences need them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from weaviate_ext import InvalidInput, Manifest, PluginConfig, hookimpl


def strip_controls(text: str) -> str:
    """``text`` without control characters that are not whitespace."""
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc")


def normalize(text: str, *, lowercase: bool = True) -> str:
    """NFKC, strip control characters, collapse whitespace, optionally lower-case."""
    text = unicodedata.normalize("NFKC", text)
    text = " ".join(strip_controls(text).split())
    return text.lower() if lowercase else text


class TextNormalizer:
    """The plugin object: ``transform`` and ``transform_batch`` of texts."""

    def __init__(self) -> None:
        self.lowercase = True

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read ``lowercase``."""
        self.lowercase = config.get_bool("lowercase")

    def _one(self, data: Any, where: str) -> str:
        if not isinstance(data, str):
            raise InvalidInput(f"{where} must be str, got {type(data).__name__}")
        return normalize(data, lowercase=self.lowercase)

    @hookimpl
    def transform(self, data: Any) -> str:
        """Normalise one text."""
        return self._one(data, "data")

    @hookimpl
    def transform_batch(self, items: Sequence[Any]) -> list[str]:
        """Normalise several texts, in order."""
        return [self._one(item, f"items[{i}]") for i, item in enumerate(items)]
