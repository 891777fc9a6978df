"""A small, real, deterministic text embedding model: feature hashing with numpy.

Word unigrams and character trigrams are hashed (BLAKE2b, so the result is the same in
every process and on every machine) into ``dimensions`` buckets with a sign, and the
vector is L2-normalised. No model file, no download.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import numpy.typing as npt

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingModel:
    """``encode(text)`` -> a float32 vector of ``dimensions`` values (unit length)."""

    def __init__(self, dimensions: int = 768) -> None:
        self.dimensions = dimensions

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        grams = []
        for word in words:
            padded = f"#{word}#"
            grams.extend(padded[i : i + 3] for i in range(max(1, len(padded) - 2)))
        return [f"w:{w}" for w in words] + [f"g:{g}" for g in grams]

    def encode(self, text: str) -> npt.NDArray[np.float32]:
        """The embedding of ``text`` (the zero vector for text without words)."""
        vector = np.zeros(self.dimensions, dtype=np.float32)
        for feature in self._features(text):
            digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            sign = 1.0 if value & 1 else -1.0
            vector[(value >> 1) % self.dimensions] += sign
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector


def load_model(dimensions: int = 768) -> HashingModel:
    """The model the example plugin serves."""
    return HashingModel(dimensions)
