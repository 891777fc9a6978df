"""``minilm-vectorizer``: the weaviate-ext vectorizer plugin around :class:`MiniLMEncoder`.

Each text becomes the all-MiniLM-L6-v2 sentence embedding: 384 float32 values with unit
L2 norm, so a dot product is the cosine similarity. Related texts (paraphrases, the
same topic) land close together even when they share no word. See
:mod:`weaviate_ext_minilm_vectorizer.encoder` for the pipeline and where the model
files come from; nothing is downloaded.

An empty text is embedded like any other (``[CLS] [SEP]``): the framework's vectorizer
contract gives every ``str`` a vector. A non-``str`` text, or one with a lone surrogate,
is ``InvalidInput``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from weaviate_ext import ConfigError, Deadline, Manifest, PluginConfig, hookimpl
from weaviate_ext_minilm_vectorizer.encoder import (
    DIMENSIONS,
    MAX_POSITIONS,
    MIN_LENGTH,
    EncoderError,
    MiniLMEncoder,
)


def encoder_from_config(config: PluginConfig) -> MiniLMEncoder:
    """A :class:`MiniLMEncoder` built from the config keys this package's manifests declare.

    Reads ``threads``, ``max_length``, ``batch_size``, ``model_path`` and
    ``tokenizer_path``; a value out of range is a :class:`ConfigError` naming the key.
    """
    threads = config.get_int("threads")
    max_length = config.get_int("max_length")
    batch_size = config.get_int("batch_size")
    if threads < 0:
        raise ConfigError(
            f"config key 'threads' must be 0 (onnxruntime decides) or more, got {threads}"
        )
    if not MIN_LENGTH <= max_length <= MAX_POSITIONS:
        raise ConfigError(
            f"config key 'max_length' must be between {MIN_LENGTH} and {MAX_POSITIONS}, "
            f"got {max_length}"
        )
    if batch_size < 1:
        raise ConfigError(f"config key 'batch_size' must be at least 1, got {batch_size}")
    return MiniLMEncoder(
        max_length=max_length,
        batch_size=batch_size,
        threads=threads,
        model_path=config.get_string("model_path") or None,
        tokenizer_path=config.get_string("tokenizer_path") or None,
    )


class MiniLMVectorizer:
    """The plugin object: ``vectorize_batch`` and ``vectorize_text`` through one encoder."""

    def __init__(self) -> None:
        self.encoder: MiniLMEncoder | None = None

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check the config, load the tokenizer and the ONNX model."""
        declared = manifest.spec.capabilities.dimensions
        if declared is not None and declared != DIMENSIONS:
            raise ConfigError(
                f"capabilities.dimensions is {declared}, but all-MiniLM-L6-v2 gives {DIMENSIONS}"
            )
        self.encoder = encoder_from_config(config)

    @hookimpl
    def plugin_health(self) -> bool:
        """Healthy while the model is loaded."""
        return self.encoder is not None and not self.encoder.closed

    @hookimpl
    def plugin_close(self) -> None:
        """Release the onnxruntime session."""
        if self.encoder is not None:
            self.encoder.close()

    def _encoder(self) -> MiniLMEncoder:
        if self.encoder is None:
            raise EncoderError("minilm-vectorizer is not set up")
        return self.encoder

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str], deadline: Deadline) -> npt.NDArray[np.float32]:
        """The vectors of at most ``maxBatchSize`` texts, ``(len(texts), 384)``."""
        return self._encoder().encode(texts, deadline)

    @hookimpl
    def vectorize_text(self, text: str, deadline: Deadline) -> npt.NDArray[np.float32]:
        """The ``(384,)`` vector of one text."""
        return self._encoder().encode([text], deadline)[0]
