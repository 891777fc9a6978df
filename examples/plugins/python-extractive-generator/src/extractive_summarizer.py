"""``extractive-summarizer``: a generator that answers with sentences of its prompt.

The prompt is the text to summarise (a leading instruction such as ``Summarize:`` or
``Summarize the following:`` is dropped). It is split into sentences after ``.``,
``!`` or ``?``; words are lower-cased ``\\w+`` runs, and common English stop words are
ignored. Each word's weight is its frequency in the whole text divided by the highest
frequency; a sentence scores the sum of its words' weights divided by the square root of
its word count (so long sentences do not win by length alone). The ``sentences`` best
sentences (ties: the earlier one) are returned in their original order, joined by one
space.

``generate_stream`` yields the answer word by word (``"Vector"``, ``" search"``, ...),
so the chunks concatenate to exactly what ``generate`` returns. The option
``max_tokens`` keeps only the first ``max_tokens`` words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from weaviate_ext import Deadline, InvalidInput, Manifest, PluginConfig, hookimpl

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"\w+")
INSTRUCTION = re.compile(r"^\s*(summari[sz]e|summary|tl;?dr)\b[^:\n]{0,80}:\s*", re.IGNORECASE)
_STOP_WORDS_TEXT = """
a an and are as at be but by for from has have he her his i in is it its of on or she
that the their them they this to was were will with you your we our not no so than then
there these those which who what when where how all any can do does
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def split_sentences(text: str) -> list[str]:
    """The non-empty sentences of ``text``, whitespace inside each collapsed."""
    return [" ".join(s.split()) for s in SENTENCE_END.split(text.strip()) if s.strip()]


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` that are not stop words."""
    return [w for w in WORD.findall(text.lower()) if w not in STOP_WORDS]


def summarize(text: str, count: int) -> str:
    """The ``count`` best sentences of ``text``, in their original order."""
    sentences = split_sentences(INSTRUCTION.sub("", text, count=1))
    if len(sentences) <= count:
        return " ".join(sentences)
    frequency = Counter(content_words(text))
    top = max(frequency.values(), default=1)

    def score(sentence: str) -> float:
        words = content_words(sentence)
        if not words:
            return 0.0
        return sum(frequency[w] / top for w in words) / math.sqrt(len(words))

    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i))
    return " ".join(sentences[i] for i in sorted(ranked[:count]))


def word_chunks(text: str) -> Iterator[str]:
    """``text`` word by word, each word after the first with its leading space."""
    for i, word in enumerate(text.split(" ")):
        yield word if i == 0 else " " + word


def _max_tokens(options: Mapping[str, Any]) -> int | None:
    value = options.get("max_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"option max_tokens must be an integer >= 0, got {value!r}")
    return value


class ExtractiveSummarizer:
    """The plugin object: ``generate`` and ``generate_stream``."""

    def __init__(self) -> None:
        self.sentences = 2

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read ``sentences``."""
        sentences = config.get_int("sentences")
        if sentences < 1:
            raise ValueError(f"config sentences must be at least 1, got {sentences}")
        self.sentences = sentences

    def answer(self, prompt: str, options: Mapping[str, Any]) -> str:
        """The summary of ``prompt``, cut to ``options["max_tokens"]`` words if given."""
        summary = summarize(prompt, self.sentences)
        limit = _max_tokens(options)
        if limit is not None:
            summary = " ".join(summary.split(" ")[:limit]) if limit else ""
        return summary

    @hookimpl
    def generate(self, prompt: str, options: Mapping[str, Any]) -> str:
        """The whole summary."""
        return self.answer(prompt, options)

    @hookimpl
    def generate_stream(
        self, prompt: str, options: Mapping[str, Any], deadline: Deadline
    ) -> Iterator[str]:
        """The summary word by word."""
        summary = self.answer(prompt, options)
        if not summary:
            return
        for chunk in word_chunks(summary):
            deadline.check()
            yield chunk
