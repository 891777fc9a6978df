"""``hash-embedder``: a feature-hashing text vectorizer, with no model to download.

Each text becomes a bag of features: its words (lower-cased Unicode ``\\w+`` runs) and
the character trigrams of each word padded with ``<`` and ``>`` (``<he``, ``hel``,
``llo``, ``lo>`` ...). Every feature is hashed with BLAKE2b, which is stable across
processes and machines (unlike Python's salted ``hash()``), into one of ``dimensions``
buckets with a sign taken from another bit of the same digest (signed hashing, so
collisions cancel out on average instead of piling up). Words weigh 1, trigrams 0.5.
The vector is L2-normalised float32; an empty text (no features) gives the zero vector.

Texts that share words or word pieces get a high cosine similarity; it is a lexical
embedding, useful as a baseline, for tests and where no model can be shipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from weaviate_ext import Deadline, InvalidInput, Manifest, PluginConfig, hookimpl

WORD = re.compile(r"\w+")
WORD_WEIGHT = 1.0
TRIGRAM_WEIGHT = 0.5
CHECK_EVERY = 4096
"""Features hashed between two deadline checks."""


@lru_cache(maxsize=1 << 16)
def bucket_of(feature: str, dimensions: int) -> tuple[int, float]:
    """The bucket and sign of one feature: BLAKE2b, 8 bytes, little-endian.

    The low bits pick the bucket, the top bit the sign.
    """
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    sign = -1.0 if value >> 63 else 1.0
    return value % dimensions, sign


def features(text: str) -> list[tuple[str, float]]:
    """The weighted features of ``text``: ``w:`` words and ``c:`` trigrams."""
    found: list[tuple[str, float]] = []
    for word in WORD.findall(text.lower()):
        found.append(("w:" + word, WORD_WEIGHT))
        padded = f"<{word}>"
        found.extend(("c:" + padded[i : i + 3], TRIGRAM_WEIGHT) for i in range(len(padded) - 2))
    return found


class HashEmbedder:
    """The plugin object: ``plugin_setup``, ``vectorize_text`` and ``vectorize_batch``."""

    def __init__(self) -> None:
        self.dimensions = 768

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read ``dimensions`` and check it equals ``capabilities.dimensions``."""
        dimensions = config.get_int("dimensions")
        if dimensions < 1:
            raise ValueError(f"config dimensions must be positive, got {dimensions}")
        declared = manifest.spec.capabilities.dimensions
        if declared is not None and dimensions != declared:
            raise ValueError(
                f"config dimensions ({dimensions}) must equal capabilities.dimensions ({declared})"
            )
        self.dimensions = dimensions

    def embed(self, texts: Sequence[str], deadline: Deadline | None = None) -> npt.NDArray[Any]:
        """The ``(len(texts), dimensions)`` float32 matrix of ``texts``."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        hashed = 0
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInput(f"texts[{row}] must be str, got {type(text).__name__}")
            feats = features(text)
            if not feats:
                continue
            index = np.empty(len(feats), dtype=np.intp)
            value = np.empty(len(feats), dtype=np.float32)
            for i, (feature, weight) in enumerate(feats):
                bucket, sign = bucket_of(feature, self.dimensions)
                index[i] = bucket
                value[i] = sign * weight
                hashed += 1
                if deadline is not None and hashed % CHECK_EVERY == 0:
                    deadline.check()
            np.add.at(out[row], index, value)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str], deadline: Deadline) -> npt.NDArray[Any]:
        """Vectorize a batch (at most ``maxBatchSize`` texts) with numpy."""
        return self.embed(texts, deadline)

    @hookimpl
    def vectorize_text(self, text: str, deadline: Deadline) -> npt.NDArray[Any]:
        """Vectorize one text."""
        return self.embed([text], deadline)[0]
