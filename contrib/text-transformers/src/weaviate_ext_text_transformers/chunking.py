"""Splitting a text into overlapping chunks of sentences, words or WordPiece tokens.

A text is first cut into *units*, each a ``(start, end)`` span of the text:

``words``
    runs of non-whitespace characters;
``sentences``
    the text up to and including a sentence end (``.``, ``!``, ``?`` or ``…``,
    possibly followed by closing quotes or brackets, then whitespace or the end of the
    text; the ideographic full stop and the full-width ``!`` and ``?`` (U+3002, U+FF01,
    U+FF1F) need no whitespace after them) or a blank line,
    without the surrounding whitespace. The rules are simple: an abbreviation such as
    ``e.g.`` followed by a space also ends a sentence;
``wordpiece``
    the tokens of a Hugging Face ``tokenizer.json`` (for example the one of
    all-MiniLM-L6-v2), special tokens left out, so that a chunk of ``size`` units
    is exactly ``size`` model tokens plus the model's own ``[CLS]`` and ``[SEP]``.

Then windows of ``size`` units are taken, each starting ``size - overlap`` units after
the previous one: consecutive chunks share exactly ``overlap`` units, every chunk but
the last has exactly ``size`` units, and the last window is the one that reaches the
last unit. A chunk is the slice of the original text from its first unit's start to
its last unit's end, so the text inside a chunk (its spaces, newlines and punctuation)
is kept as it was, and every non-whitespace character of the text is in some chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

Span = tuple[int, int]
"""A ``(start, end)`` character range of the text."""

Splitter = Callable[[str], list[Span]]
"""A function from a text to its units."""

WORD = re.compile(r"\S+")

SENTENCE_END = re.compile(
    r"[.!?\u2026]+[\"'\u201d\u2019\u00bb)\]]*(?=\s|$)"  # . ! ? … then quotes/brackets, space
    r"|[\u3002\uff01\uff1f]+[\"'\u201d\u2019\u300d\u300f\uff09)\]]*"  # CJK stops: no space needed
    r"|\n[^\S\n]*\n\s*"  # a blank line ends a paragraph, and its sentence
)


def word_spans(text: str) -> list[Span]:
    """The spans of the whitespace-separated words of ``text``."""
    return [m.span() for m in WORD.finditer(text)]


def _trimmed(text: str, start: int, end: int) -> Span | None:
    """``(start, end)`` without leading and trailing whitespace; ``None`` when empty."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def sentence_spans(text: str) -> list[Span]:
    """The spans of the sentences of ``text`` (see the module docstring)."""
    spans: list[Span] = []
    position = 0
    for match in SENTENCE_END.finditer(text):
        span = _trimmed(text, position, match.end())
        if span is not None:
            spans.append(span)
        position = match.end()
    span = _trimmed(text, position, len(text))
    if span is not None:
        spans.append(span)
    return spans


def wordpiece_splitter(tokenizer: object) -> Splitter:
    """A splitter for the tokens of a ``tokenizers.Tokenizer``, special tokens left out.

    Its offsets say where each token came from, so chunks are still slices of the text.
    """

    def split(text: str) -> list[Span]:
        encoding = tokenizer.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
        return [(start, end) for start, end in encoding.offsets if end > start]

    return split


def windows(count: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """The ``[first, last)`` unit ranges of the chunks of ``count`` units.

    ``size >= 1`` units per chunk, ``0 <= overlap < size`` units shared by neighbours.
    """
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got {size} and {overlap}")
    if count == 0:
        return []
    step = size - overlap
    ranges: list[tuple[int, int]] = []
    first = 0
    while True:
        last = min(first + size, count)
        ranges.append((first, last))
        if last == count:
            return ranges
        first += step


def chunk_spans(units: Sequence[Span], size: int, overlap: int) -> list[Span]:
    """The character spans of the chunks made of ``units``."""
    return [(units[a][0], units[b - 1][1]) for a, b in windows(len(units), size, overlap)]


def chunk_text(text: str, split: Splitter, size: int, overlap: int) -> list[str]:
    """``text`` cut into chunks of ``size`` units sharing ``overlap`` units."""
    return [text[start:end] for start, end in chunk_spans(split(text), size, overlap)]
