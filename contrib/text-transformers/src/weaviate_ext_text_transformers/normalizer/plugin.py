"""``unicode-normalizer``: one text in, the cleaned text out.

See :mod:`weaviate_ext_text_transformers.normalizing` for the steps. A non-``str`` item
is ``InvalidInput``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from weaviate_ext import ConfigError, InvalidInput, Manifest, PluginConfig, hookimpl
from weaviate_ext_text_transformers.normalizing import FORMS, normalize


class UnicodeNormalizer:
    """The plugin object: ``transform`` and ``transform_batch`` of texts."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read and check the options."""
        form = config.get_string("form")
        if form not in FORMS:
            raise ConfigError(f"config key 'form' must be one of {', '.join(FORMS)}, got {form!r}")
        self.options = {
            "form": form,
            "lowercase": config.get_bool("lowercase"),
            "strip_control": config.get_bool("strip_control"),
            "collapse_whitespace": config.get_bool("collapse_whitespace"),
            "keep_newlines": config.get_bool("keep_newlines"),
        }

    def _one(self, data: Any, where: str) -> str:
        if not isinstance(data, str):
            raise InvalidInput(f"{where} must be str, got {type(data).__name__}")
        return normalize(data, **self.options)

    @hookimpl
    def transform(self, data: Any) -> str:
        """Normalise one text."""
        return self._one(data, "data")

    @hookimpl
    def transform_batch(self, items: Sequence[Any]) -> list[str]:
        """Normalise several texts, in order."""
        return [self._one(item, f"items[{i}]") for i, item in enumerate(items)]
