"""minilm-vectorizer through the framework: conformance, meaning, batching, failures."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from weaviate_ext_minilm_vectorizer import encoder as encoder_module
from weaviate_ext_minilm_vectorizer.encoder import (
    DIMENSIONS,
    EncoderError,
    MiniLMEncoder,
    ModelFilesError,
)

from weaviate_ext import (
    ConfigError,
    DeadlineExceeded,
    InvalidInput,
    PluginLoadError,
    PluginManager,
    VectorizerHandle,
)
from weaviate_ext.testing import check_plugin

# Cosine similarities of all-MiniLM-L6-v2 (fp32, PyTorch) published in the
# sentence-transformers documentation. The int8 model must stay close to them.
PUBLISHED = [
    ("The new movie is awesome", "The new movie is so great", 0.8939),
    ("The cat sits outside", "The dog plays in the garden", 0.2838),
    ("I love pasta", "Do you like pizza?", 0.5096),
    ("A man is playing guitar", "A woman watches TV", -0.0327),
    ("A man is eating food.", "A man is eating a piece of bread.", 0.7553),
]

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "hello world",
    "Vector databases store embeddings for similarity search. " * 40,
    "中文文本\uff1a向量搜索引擎",
    "emoji 🚀🔥👩\u200d💻",
    "A man is eating food.",
    "x",
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_conformance(vectorizer: VectorizerHandle) -> None:
    check_plugin(vectorizer).raise_for_failures()


def test_vectors_are_384_float32_unit_norm(vectorizer: VectorizerHandle) -> None:
    one = vectorizer.vectorize_text("hello world")
    assert one.shape == (DIMENSIONS,) == (384,)
    assert one.dtype == np.float32
    matrix = vectorizer.vectorize_batch(TEXTS)
    assert matrix.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("a", "b", "expected"), PUBLISHED)
def test_similarities_match_the_published_model(
    vectorizer: VectorizerHandle, a: str, b: str, expected: float
) -> None:
    va, vb = vectorizer.vectorize_batch([a, b])
    assert cosine(va, vb) == pytest.approx(expected, abs=0.02)


def test_related_sentences_are_closer_than_unrelated(vectorizer: VectorizerHandle) -> None:
    query, paraphrase, unrelated = vectorizer.vectorize_batch(
        [
            "How do I reset my password?",
            "I forgot my login credentials",  # no word in common with the query
            "The recipe needs two eggs and some flour",
        ]
    )
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.3
    cat, kitten, stocks = vectorizer.vectorize_batch(
        ["A cat sleeps on the sofa.", "A kitten is napping on the couch.", "Stocks fell sharply."]
    )
    assert cosine(cat, kitten) > 0.5 > cosine(cat, stocks)


def test_batch_equals_singles(vectorizer: VectorizerHandle) -> None:
    batch = vectorizer.vectorize_batch(TEXTS)
    singles = np.stack([vectorizer.vectorize_text(t) for t in TEXTS])
    np.testing.assert_allclose(batch, singles, atol=1e-5, rtol=0)
    reversed_batch = vectorizer.vectorize_batch(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(batch, reversed_batch, atol=1e-5, rtol=0)


def test_equal_texts_get_identical_vectors(vectorizer: VectorizerHandle) -> None:
    texts = ["same text", "something else", "same text", "x", "same text"]
    batch = vectorizer.vectorize_batch(texts)
    assert np.array_equal(batch[0], batch[2]) and np.array_equal(batch[0], batch[4])


def test_small_runs_and_handle_chunks_give_the_same_vectors(
    vectorizer: VectorizerHandle, manifest: Path
) -> None:
    texts = [f"sentence {i}: " + "word " * (i % 9) for i in range(70)]  # > maxBatchSize 64
    expected = vectorizer.vectorize_batch(texts)
    with PluginManager(discover=False) as manager:
        small = manager.load(manifest, config={"threads": 1, "batch_size": 3})
        np.testing.assert_allclose(small.vectorize_batch(texts), expected, atol=1e-5, rtol=0)


def test_long_texts_are_truncated_at_max_length(manifest: Path) -> None:
    with PluginManager(discover=False) as manager:
        short = manager.load(manifest, config={"threads": 1, "max_length": 8})
        head = "one two three four five six"  # 6 tokens + [CLS] + [SEP] = 8
        cut = short.vectorize_batch([head, head + " seven eight nine", "one two three"])
        np.testing.assert_allclose(cut[0], cut[1], atol=1e-6, rtol=0)  # the tail is cut off
        assert cosine(cut[0], cut[2]) < 0.999  # a shorter text is not cut to the same
    with PluginManager(discover=False) as manager:
        full = manager.load(manifest, config={"threads": 1, "max_length": 512})
        a, b = full.vectorize_batch([head, head + " seven eight nine"])
        assert cosine(a, b) < 0.999
        long_vector = full.vectorize_text("token " * 5000)  # far past 512 tokens
        assert long_vector.shape == (384,)


def test_empty_input(vectorizer: VectorizerHandle) -> None:
    empty = vectorizer.vectorize_batch([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32
    # The vectorizer contract gives every str a vector: "" is [CLS] [SEP].
    blank = vectorizer.vectorize_text("")
    assert np.linalg.norm(blank) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(vectorizer.vectorize_text("   \n\t"), blank, atol=1e-6)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["list"]])
def test_non_text_is_invalid_input(vectorizer: VectorizerHandle, bad: Any) -> None:
    with pytest.raises(InvalidInput):
        vectorizer.vectorize_text(bad)
    with pytest.raises(InvalidInput):
        vectorizer.vectorize_batch(["fine", bad])


def test_lone_surrogate_is_invalid_input(vectorizer: VectorizerHandle) -> None:
    with pytest.raises(InvalidInput, match="lone surrogate"):
        vectorizer.vectorize_batch(["fine", "broken \ud800 text"])


def test_deadline_stops_a_long_batch(vectorizer: VectorizerHandle) -> None:
    texts = ["a sentence long enough to take a moment " * 20] * 64
    with pytest.raises(DeadlineExceeded):
        vectorizer.vectorize_batch(texts, timeout=1e-4)
    assert vectorizer.vectorize_text("still serving").shape == (384,)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_length": 1}, "max_length"),
        ({"max_length": 513}, "max_length"),
        ({"batch_size": 0}, "batch_size"),
        ({"threads": -1}, "threads"),
        ({"model_path": "/nonexistent/model.onnx"}, "does not exist"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(PluginLoadError, match=message):
        plugin_manager.load(manifest, config=config)
    assert "minilm-vectorizer" not in plugin_manager.names()


def test_unreadable_model_and_tokenizer_files(
    plugin_manager: PluginManager, manifest: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00 this is not a model or a tokenizer \xff")
    with pytest.raises(PluginLoadError, match="onnxruntime cannot load"):
        plugin_manager.load(manifest, config={"model_path": str(junk)})
    with pytest.raises(PluginLoadError, match="cannot load the tokenizer"):
        plugin_manager.load(manifest, config={"tokenizer_path": str(junk)})
    with pytest.raises(ConfigError, match="not_a_key"):
        plugin_manager.load(manifest, config={"not_a_key": 1})


def test_damaged_packaged_model_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(b"truncated download")
    monkeypatch.setattr(encoder_module, "packaged_model_path", lambda: damaged)
    with pytest.raises(ModelFilesError, match="sha256"):
        MiniLMEncoder(threads=1)


def test_packaged_files_are_found() -> None:
    model = encoder_module.packaged_model_path()
    tokenizer = encoder_module.packaged_tokenizer_path()
    assert model.name == "model.onnx" and model.stat().st_size > 10_000_000
    assert tokenizer.name == "tokenizer.json"
    assert encoder_module.sha256_of(model) == encoder_module.packaged_model_sha256()


def test_encoder_directly_and_after_close() -> None:
    encoder = MiniLMEncoder(threads=1, max_length=32, batch_size=2)
    assert "max_length=32" in repr(encoder)
    ids = encoder.token_ids(["hello world"])
    assert ids == [[101, 7592, 2088, 102]]  # [CLS] hello world [SEP]
    vectors = encoder.encode(["hello world", "goodbye"])
    assert vectors.shape == (2, 384)
    with pytest.raises(InvalidInput):
        encoder.encode("not a list")
    encoder.close()
    assert encoder.closed
    with pytest.raises(EncoderError, match="closed"):
        encoder.encode(["hello"])
    with pytest.raises(ValueError, match="max_length"):
        MiniLMEncoder(max_length=0)


def test_installed_plugin_is_found_by_name() -> None:
    with PluginManager(config={"minilm-vectorizer": {"threads": 1}}) as manager:
        assert "minilm-vectorizer" in manager.installed
        handle = manager.get_vectorizer("minilm-vectorizer")
        assert handle.vectorize_text("found through the entry point").shape == (384,)
        assert manager.manifest("minilm-vectorizer").spec.capabilities.dimensions == 384


def test_manifest_version_is_the_package_version(manifest: Path) -> None:
    from weaviate_ext import load_manifest

    installed = importlib.metadata.version("weaviate-ext-minilm-vectorizer")
    assert load_manifest(manifest).version == installed


@pytest.mark.parametrize("size", [1, 3, 32])
def test_runs_are_padding_aware_and_cover_every_text_once(size: int) -> None:
    lengths = [5, 6, 6, 7, 8, 9, 12, 20, 21, 22, 60, 61, 200]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    runs = encoder_module.runs(order, lengths, size)
    assert [i for run in runs for i in run] == order  # in order, each once
    for run in runs:
        assert 1 <= len(run) <= size
        padded = len(run) * max(lengths[i] for i in run)
        assert len(run) == 1 or padded <= encoder_module.PAD_SLACK * sum(lengths[i] for i in run)
    if size == 32:  # short texts share a run; the long tail is not padded into it
        assert runs[0][:4] == order[:4]
        assert len(runs) > 1


def test_batches_of_mixed_lengths_equal_their_single_texts() -> None:
    encoder = MiniLMEncoder(threads=1, batch_size=32)
    texts = ["a", "a short one", "a sentence of medium length about rivers", "long " * 40]
    matrix = encoder.encode(texts)
    for row, text in zip(matrix, texts, strict=True):
        assert np.allclose(row, encoder.encode_one(text), atol=1e-5)
