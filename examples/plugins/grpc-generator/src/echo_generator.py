"""A streaming gRPC generator in the recommended, Pythonic form of the SDK.

It "generates" deterministically: the answer is the prompt's most informative sentence
(the one with the most distinct words), then the prompt's words in order of first
appearance, capped by the ``max_tokens`` option. Each word is streamed as its own
chunk, with an optional delay between chunks (``delay_ms``), like a language model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from weaviate_plugin_sdk import GeneratorPlugin, serve

_SENTENCE = re.compile(r"[^.!?]+[.!?]?")
_WORD = re.compile(r"\w+")


class ExtractiveGenerator(GeneratorPlugin):
    """Streams an extractive answer word by word."""

    plugin_name = "grpc-extractive-generator"
    plugin_version = "1.0.0"

    def setup(self, config: Mapping[str, Any]) -> None:
        self.default_tokens = int(config.get("maxTokens", 64))
        self.delay = float(config.get("delayMs", 0)) / 1000.0

    def generate_stream(self, prompt: str, options: Mapping[str, Any]) -> Iterator[str]:
        limit = int(options.get("max_tokens", self.default_tokens))
        sentences = [s.strip() for s in _SENTENCE.findall(prompt) if s.strip()]
        best = max(sentences, key=lambda s: len(set(_WORD.findall(s.lower()))), default="")
        words = best.split()
        for i, word in enumerate(words[:limit]):
            if self.delay:
                time.sleep(self.delay)
            yield word if i == 0 else " " + word


if __name__ == "__main__":
    serve(ExtractiveGenerator())
